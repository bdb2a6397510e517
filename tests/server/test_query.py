"""Queries: the HTTP/JSON endpoint on loopback and the CLI subcommands."""

from __future__ import annotations

import argparse
import json
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
from edge_server_helpers import frame_items, run

from edge_sdk.client import DeviceClient
from edge_sdk.server.cli import register_cli
from edge_sdk.server.http import HttpEndpoint, require_loopback
from edge_sdk.transport.tcp import TcpClientTransport


@pytest.fixture
def filled(server, store, tmp_path):
    """A server holding 6 frames of cam1 (image + f16 descriptor each)."""
    rng = np.random.default_rng(5)

    async def go():
        client = DeviceClient(
            TcpClientTransport(*server.address), store.creds["cam1"], str(tmp_path / "spool")
        )
        client.start()
        ids = []
        for _ in range(6):
            fid = client.new_frame_id()
            ids.append(fid)
            await client.send_batch(frame_items(fid, rng)[1])
        assert await client.flush(20)
        await client.close()
        return ids

    ids = run(go())
    assert server.server.post.wait_idle(20)
    return server, ids


def get(server, path, body=None):
    url = f"http://127.0.0.1:{server.http_address[1]}{path}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_health_frames_and_search(filled):
    server, ids = filled
    status, health = get(server, "/health")
    assert (
        status == 200
        and health["ok"]
        and health["counts"]["frames"] == 6
        and health["index"] == {"f16-32": 6}
    )
    status, frames = get(server, "/frames?device=cam1&limit=4")
    assert status == 200 and [f["frame"] for f in frames["frames"]] == sorted(ids, reverse=True)[:4]
    assert all(f["png"] and f["kinds"] == ["image", "f16"] for f in frames["frames"])
    status, res = get(server, f"/search?device=cam1&frame={ids[2]}&k=3")
    assert status == 200 and len(res["hits"]) == 3 and res["hits"][0]["frame"] == ids[2]
    assert res["hits"][0]["score"] == pytest.approx(1.0, abs=1e-2) and res["hits"][0]["thumb"].endswith(
        f"{ids[2]}.png"
    )


def test_http_search_by_vector(filled, tmp_path):
    server, ids = filled
    status, res = get(server, "/search", {"vector": list(np.ones(32)), "kind": "f16", "k": 6})
    assert status == 200 and sorted(h["frame"] for h in res["hits"]) == sorted(ids)


@pytest.mark.parametrize(
    "path,body,code,text",
    [
        ("/nope", None, 404, "no route"),
        ("/search?device=cam1&frame=123456", None, 404, "no descriptor stored"),
        ("/search?device=cam1", None, 400, "KeyError"),
        ("/search", {"vector": [1.0] * 7, "kind": "f16"}, 404, "dim 7"),
        ("/search", {"vector": [1.0] * 32, "kind": "f99"}, 400, "expected one of"),
        ("/frames", {"x": 1}, 405, "not allowed"),
    ],
)
def test_http_errors_are_json(filled, path, body, code, text):
    server, _ = filled
    status, res = get(server, path, body)
    assert status == code and text in res["error"]


def test_http_rejects_oversized_requests(filled):
    server, _ = filled
    with socket.create_connection(("127.0.0.1", server.http_address[1]), timeout=10) as s:
        s.sendall(b"POST /search HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
        assert b" 413 " in s.recv(4096)
    with socket.create_connection(("127.0.0.1", server.http_address[1]), timeout=10) as s:
        s.sendall(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")
        assert b" 413 " in s.recv(4096)


def test_http_endpoint_refuses_non_loopback_addresses():
    for host in ("0.0.0.0", "192.168.1.10", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            require_loopback(host)
        with pytest.raises(ValueError):
            HttpEndpoint(None, dict, host)
    require_loopback("127.0.0.1")
    require_loopback("::1")


def cli(argv):
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_frames_and_query_offline_and_over_http(filled, capsys):
    server, ids = filled
    data = str(server.server.data_dir)
    assert cli(["frames", "--data", data, "--device", "cam1", "--json"]) == 0
    assert [f["frame"] for f in json.loads(capsys.readouterr().out)] == sorted(ids, reverse=True)
    assert cli(["query", "--data", data, "--frame", f"cam1:{ids[1]}", "-k", "2", "--json"]) == 0
    offline = json.loads(capsys.readouterr().out)
    url = f"http://127.0.0.1:{server.http_address[1]}"
    assert cli(["query", "--url", url, "--frame", f"cam1:{ids[1]}", "-k", "2", "--json"]) == 0
    online = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in offline] == [h["id"] for h in online] and offline[0]["frame"] == ids[1]
    assert cli(["frames", "--data", data]) == 0
    assert "cam1" in capsys.readouterr().out


def test_cli_query_by_vector_file_and_errors(filled, tmp_path, capsys):
    server, ids = filled
    np.save(tmp_path / "q.npy", np.ones(32))
    assert (
        cli(["query", "--data", str(server.server.data_dir), "--vector", str(tmp_path / "q.npy"), "-k", "6"])
        == 0
    )
    assert len(capsys.readouterr().out.strip().splitlines()) == 7  # header + 6 hits
    assert cli(["query", "--data", str(tmp_path / "nowhere"), "--frame", "cam1:1"]) == 2
    assert "no server database" in capsys.readouterr().err
    assert cli(["query", "--data", str(server.server.data_dir), "--frame", "nocolon"]) == 2


def test_cli_credentials(tmp_path, capsys):
    srv, dev = tmp_path / "server.json", tmp_path / "cam9.json"
    assert cli(["credentials", "add", "cam9", "--server-file", str(srv), "--device-file", str(dev)]) == 0
    assert cli(["credentials", "list", "--server-file", str(srv)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "cam9"
    assert cli(["credentials", "add", "bad/id", "--server-file", str(srv), "--device-file", str(dev)]) == 2


def test_acked_descriptor_is_searchable_before_post_processing(server, store, tmp_path):
    server.server.post._index = lambda conn, desc_id: None  # the post-processor lags behind (here: forever)
    rng = np.random.default_rng(8)

    async def go():
        client = DeviceClient(
            TcpClientTransport(*server.address), store.creds["cam2"], str(tmp_path / "spool2")
        )
        client.start()
        fid = client.new_frame_id()
        await client.send_batch(frame_items(fid, rng)[1])
        assert await client.flush(20)
        await client.close()
        return fid

    fid = run(go())
    status, res = get(server, f"/search?device=cam2&frame={fid}&k=1")
    assert status == 200 and res["hits"][0]["frame"] == fid
