"""Issue 9 item 13 (part): a malformed ``run.local_url`` is a config error (field path), not a traceback."""

from __future__ import annotations

import pytest

from hlmm.config import ConfigError, load_config


@pytest.mark.parametrize("url", ["127.0.0.1:8765", "ftp://127.0.0.1:8765", "http://:8765", "http://127.0.0.1:abc",
                                 "http://127.0.0.1:99999", "http://127.0.0.1", "http://127.0.0.1:8765/x?y=1",
                                 "not a url",
                                 # --network local never resolves a public host: names and public IPs refused
                                 "http://api.hyperliquid.xyz:443", "https://example.com:8765", "http://8.8.8.8:80"])
def test_malformed_local_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"run\.local_url"):
        load_config(None, [f"run.local_url={url}"])


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "https://localhost:443/", "http://[::1]:9000",
                                 "http://192.168.1.20:8765", "http://10.0.0.5:8765"])
def test_well_formed_local_url_loads(url: str) -> None:
    assert load_config(None, [f"run.local_url={url}"]).run.local_url == url.rstrip("/")
