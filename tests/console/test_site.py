"""Site file validation: one line per problem naming file, line and field."""

from __future__ import annotations

import pytest

from console.site import SiteError, load_site

GOOD = """
[site]
name = "hall 2"
timezone = "Asia/Shanghai"

[ssh]
user = "ops"

[[racks]]
name = "A01"
slots = 4

[[nodes]]
name = "gpu-a01-1"
rack = "A01"
slot = 1
vendor = "nvidia"

[[nodes]]
name = "npu-a01-2"
host = "10.0.0.2"
rack = "A01"
slot = 2

[[jobs]]
name = "llm"
nodes = ["gpu-a01-*", "npu-*"]

[[shifts]]
name = "day"
start = "08:00"
hours = 12
"""


def _write(tmp_path, text):
    p = tmp_path / "site.toml"
    p.write_text(text)
    return p


def test_good_site(tmp_path):
    site = load_site(_write(tmp_path, GOOD))
    assert [n.name for n in site.nodes] == ["gpu-a01-1", "npu-a01-2"]
    assert site.nodes[0].host == "gpu-a01-1" and site.nodes[1].vendor is None
    assert site.jobs[0].nodes == ("gpu-a01-*", "npu-*")
    ep = site.endpoint(site.nodes[1])
    assert (ep.name, ep.host, ep.port, ep.user) == ("npu-a01-2", "10.0.0.2", 22, "ops")


@pytest.mark.parametrize(("change", "expected"), [
    (('slot = 2\n', 'slot = 2\ncolour = "red"\n'), ":24: nodes[1].colour: unknown key"),
    (('slot = 1\n', 'slot = "one"\n'), ":16: nodes[0].slot: must be an integer, got 'one'"),
    (('rack = "A01"\nslot = 2', 'rack = "B07"\nslot = 2'), ":22: nodes[1].rack: rack 'B07' does not exist"),
    (('name = "npu-a01-2"', 'name = "gpu-a01-1"'), ":20: nodes[1].name: duplicate node 'gpu-a01-1'"),
    (('"npu-*"', '"npu-[ab"'), "jobs[0].nodes: bad glob 'npu-[ab': unbalanced '['"),
    (('"npu-*"', '"cpu-*"'), "jobs[0].nodes: glob 'cpu-*' matches no node"),
    (('vendor = "nvidia"', 'vendor = "nvidai"'), "nodes[0].vendor: unknown vendor 'nvidai'"),
    (('Asia/Shanghai', 'Mars/Olympus'), "site.timezone: unknown timezone 'Mars/Olympus'"),
    (('start = "08:00"', 'start = "8am"'), "shifts[0].start: must be HH:MM"),
])
def test_problem_is_named(tmp_path, change, expected):
    with pytest.raises(SiteError) as info:
        load_site(_write(tmp_path, GOOD.replace(*change, 1)))
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert all(p.startswith(str(tmp_path / "site.toml")) for p in info.value.problems)


def test_toml_syntax_error_has_line_and_column(tmp_path):
    with pytest.raises(SiteError) as info:
        load_site(_write(tmp_path, GOOD.replace('name = "hall 2"', 'name = "hall 2')))
    (problem,) = info.value.problems
    assert problem.startswith(f"{tmp_path / 'site.toml'}:3:") and "TOML syntax error" in problem


def test_missing_file(tmp_path):
    with pytest.raises(SiteError, match="no such file"):
        load_site(tmp_path / "nope.toml")


def test_ssh_config_is_honoured(tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host gpu-a01-1\n  HostName 10.9.9.9\n  Port 2222\n  User admin\n"
                   "  IdentityFile ~/.ssh/id_gpu\n  ProxyJump bastion@jump.example:2200\n")
    text = GOOD.replace('user = "ops"', f'user = "ops"\nconfig_file = "{cfg}"')
    site = load_site(_write(tmp_path, text))
    ep = site.endpoint(site.nodes[0])
    assert (ep.host, ep.port, ep.user) == ("10.9.9.9", 2222, "admin")
    assert ep.identity_files[-1].endswith("id_gpu")
    assert ep.jump is not None and (ep.jump.host, ep.jump.port, ep.jump.user) == ("jump.example", 2200, "bastion")


@pytest.mark.parametrize(("change", "expected"), [
    (('slots = 4', 'slots = -3'), ":11: racks[0].slots: must be >= 1 and <= 1024, got -3"),
    (('slots = 4', 'slots = 1000000000000'), ":11: racks[0].slots: must be >= 1 and <= 1024, got 1000000000000"),
    (('name = "hall 2"', 'name = ""'), ":3: site.name: must not be empty"),
    (('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai"\ninterval_s = nan'),
     ":5: site.interval_s: must be > 0 and <= 86400, got nan"),
    (('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai"\ninterval_s = inf'), "site.interval_s: must be > 0"),
    (('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai"\ninterval_s = -1'), "site.interval_s: must be > 0"),
    (('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai"\ninterval_s = 0'), "site.interval_s: must be > 0"),
    (('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai"\ninterval_s = 1e9'), "site.interval_s: must be > 0"),
    (('user = "ops"', 'user = "ops"\nconnect_timeout_s = nan'), ":8: ssh.connect_timeout_s: must be > 0 and <= 3600"),
    (('user = "ops"', 'user = "ops"\nconnect_timeout_s = 1e300'), "ssh.connect_timeout_s: must be > 0 and <= 3600"),
    (('user = "ops"', 'user = "ops"\nmax_parallel = true'), "ssh.max_parallel: must be an integer, got True"),
    (('nodes = ["gpu-a01-*", "npu-*"]', 'nodes = []'), ":27: jobs[0].nodes: must list at least one node"),
    (('name = "gpu-a01-1"', 'name = "gpu\\u001b]0;x\\u0007\\n"'),
     ":14: nodes[0].name: contains the control character \\x1b (at 4): 'gpu\\x1b]0;x\\x07\\n'"),
    (('name = "gpu-a01-1"', 'name = "\\u202egpu"'), "nodes[0].name: contains the control character \\u202e"),
    (('hours = 12', 'hours = nan'), "shifts[0].hours: must be > 0 and <= 24, got nan"),
    (('name = "llm"', 'name = "llm"\nprogress_regex = \'(?P<step>a{99999999999})\''),
     "jobs[0].progress_regex: invalid regular expression: the repetition number is too large"),
])
def test_values_out_of_range_are_named(tmp_path, change, expected):
    with pytest.raises(SiteError) as info:
        load_site(_write(tmp_path, GOOD.replace(*change, 1)))
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert all("\x1b" not in p and "\n" not in p for p in info.value.problems)


@pytest.mark.parametrize(("text", "expected"), [
    ("[site]\nname = 'x'\na = " + "[" * 3000 + "]" * 3000 + "\n", ": TOML nested too deeply"),
    ("[site]\nname = 'x'\ninterval_s = " + "9" * 5000 + "\n", ": TOML value cannot be read"),
    ("[site]\nname = 'x'\ninterval_s = " + "9" * 400 + "\n", ":3: site.interval_s: must be > 0 and <= 86400"),
])
def test_toml_that_python_cannot_hold_is_one_line(tmp_path, text, expected):
    with pytest.raises(SiteError) as info:
        load_site(_write(tmp_path, text))
    (problem,) = info.value.problems
    assert problem.startswith(str(tmp_path / "site.toml")) and expected in problem, problem


def test_files_that_are_not_site_files(tmp_path):
    for path, expected in ((tmp_path, "is a directory"), ("/dev/null", "not a regular file"), ("", "no such file")):
        with pytest.raises(SiteError, match=expected):
            load_site(path)
    (tmp_path / "latin1.toml").write_bytes(b'[site]\nname = "caf\xe9"\n')
    with pytest.raises(SiteError, match=r"latin1.toml:2: not UTF-8 text"):
        load_site(tmp_path / "latin1.toml")


def test_vendor_thresholds_and_spaces_are_named(tmp_path):
    text = GOOD + "[thresholds.vendors.ascend]\npower_warn_w = -5\n"
    text = text.replace('host = "10.0.0.2"', 'host = "10.0.0.2 -oProxyCommand=x"')
    with pytest.raises(SiteError) as info:
        load_site(_write(tmp_path, text))
    assert any(":34: thresholds.vendors.ascend.power_warn_w: must be > 0" in p for p in info.value.problems), \
        info.value.problems
    assert any(":21: nodes[1].host: must not contain spaces" in p for p in info.value.problems), info.value.problems


SOURCE = '''
[[sources]]
kind = "prometheus"
url = "http://prometheus.example:9090/"
nodes = ["npu-*"]
'''


def test_a_source_takes_its_nodes_off_ssh(tmp_path):
    from console.site import source_nodes

    site = load_site(_write(tmp_path, GOOD + SOURCE + 'timeout_s = 2.5\nmax_age_s = 45\nnode_label = "k8s_node"\n'))
    (src,) = site.sources
    assert (src.kind, src.url, src.nodes, src.timeout_s, src.max_age_s, src.node_label) == (
        "prometheus", "http://prometheus.example:9090", ("npu-*",), 2.5, 45.0, "k8s_node")
    assert source_nodes(site) == {"npu-a01-2": 0}
    plain = load_site(_write(tmp_path, GOOD + SOURCE))
    assert (plain.sources[0].timeout_s, plain.sources[0].max_age_s) == (5.0, None)


@pytest.mark.parametrize(("change", "expected"), [
    (('kind = "prometheus"', 'kind = "graphite"'), ":35: sources[0].kind: must be one of prometheus, got 'graphite'"),
    (('prometheus.example:9090/', 'ops:s3cret@prometheus.example:9090/'),
     ":36: sources[0].url: must not hold a user or password (no secret in the site file)"),
    (('http://prometheus.example:9090/', 'prometheus.example:9090'), ":36: sources[0].url: must be an http(s) URL"),
    (('prometheus.example:9090/', 'prometheus.example:99999/'), ":36: sources[0].url: not a URL"),
    (('9090/', '9090/?token=abc'), ":36: sources[0].url: must be the server's base URL"),
    (('["npu-*"]', '["infer-*"]'), ":37: sources[0].nodes: glob 'infer-*' matches no node"),
    (('["npu-*"]', '[]'), ":37: sources[0].nodes: must list at least one node"),
    (('nodes = ["npu-*"]', 'nodes = ["npu-*"]\ntimeout_s = 0'), ":38: sources[0].timeout_s: must be > 0 and <= 60"),
    (('nodes = ["npu-*"]', 'nodes = ["npu-*"]\nmax_age_s = nan'), "sources[0].max_age_s: must be > 0"),
    (('nodes = ["npu-*"]', 'nodes = ["npu-*"]\npassword = "x"'), ":38: sources[0].password: unknown key"),
    (('nodes = ["npu-*"]', 'nodes = ["npu-*"]\nnode_label = ""'), ":38: sources[0].node_label: must not be empty"),
    (('kind = "prometheus"\n', ''), ":34: sources[0]: missing required key 'kind'"),
])
def test_source_problems_are_one_line_naming_file_line_and_field(tmp_path, change, expected):
    with pytest.raises(SiteError) as info:
        load_site(_write(tmp_path, GOOD + SOURCE.replace(*change, 1)))
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert all(p.startswith(str(tmp_path / "site.toml")) and "\n" not in p for p in info.value.problems)


def test_a_node_is_read_from_one_source_only(tmp_path):
    text = GOOD + SOURCE + SOURCE.replace('"npu-*"', '"npu-a01-?"')
    with pytest.raises(SiteError) as info:
        load_site(_write(tmp_path, text))
    assert info.value.problems == [f"{tmp_path / 'site.toml'}:42: sources[1].nodes: node 'npu-a01-2' is already "
                                   "read from sources[0]"]


def test_bad_source_in_collect_is_exit_2_one_line(tmp_path, capsys):
    from console.cli import run

    path = _write(tmp_path, GOOD + SOURCE.replace("http://", "ftp://"))
    assert run(["collect", "--site", str(path), "--db", str(tmp_path / "x.db"), "--once"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"mixops: {path}:36: sources[0].url: must be an http(s) URL like http://prometheus.example:9090, "
                   "got 'ftp://prometheus.example:9090/'"]
