"""Who may do what: API keys with a role and the agencies they act for, kept in Elasticsearch."""

from secmon.auth.credentials import presented_secret
from secmon.auth.keys import ApiKey, KeyStore, KeyStoreUnavailable, Role, apikeys_index

__all__ = ["ApiKey", "KeyStore", "KeyStoreUnavailable", "Role", "apikeys_index", "presented_secret"]
