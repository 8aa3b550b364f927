"""The fuzz tests' fixtures: the running API of tests/api, for the request bodies of test_fuzz_api."""

from tests.api.conftest import api  # noqa: F401 - the running API fixture lives with the API tests
