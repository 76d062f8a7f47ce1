"""The incident engine on sequences of sweeps with known faults, the lifecycle through the CLI, and the
knowledge base in both languages."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from collectors.model import Action, CardSample, Fault, Health, NodeReport, Severity
from console import incidents, knowledge
from console.cli import run
from console.store import Store

T0 = 1_800_000_000.0


def card(i, temp=50.0, health=Health.OK, serial=None):
    return CardSample(i, model="H800", serial=serial or f"S-{i}", health=health, temperature_c=temp,
                      utilization_pct=90.0, memory_used_mib=1000.0, memory_total_mib=80000.0, power_w=500.0)


def ok(node, cards=None, faults=(), warnings=()):
    return NodeReport(node, True, T0, 0.1, "nvidia", tuple(cards or [card(i) for i in range(8)]), tuple(faults),
                      tuple(warnings))


def down(node, error="connect timed out after 5 s"):
    return NodeReport(node, False, T0, 5.0, "nvidia", error=error)


def xid(i, code=79, action=Action.REBOOT_NODE, severity=Severity.CRITICAL):
    return Fault(f"Xid {code}", severity, action, f"NVRM: Xid (PCI:0000:18:00): {code}", i, T0)


@pytest.fixture
def env(tmp_path):
    store = Store(str(tmp_path / "ops.db"))
    rack_of = {f"n{i}": "A01" if i < 4 else "A02" for i in range(8)}
    engine = incidents.IncidentEngine(store.conn, clear_after=3, rack_of=rack_of, jobs_of={"n0": ["llm"], "n1": ["llm"]})
    state = {"t": T0}

    def sweep(reports, stale=()):
        state["t"] += 10
        reports = [replace(r, started=state["t"]) for r in reports]
        store.write_sweep(state["t"], state["t"] + 1, reports, stale)
        return engine.process(state["t"] + 1, reports, stale)

    yield store, engine, sweep
    store.close()


def rows(store, where="1=1"):
    cur = store.conn.execute(f"SELECT * FROM incidents WHERE {where} ORDER BY id")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur]


def test_dedup_counts_repeats_and_severity_follows_jobs(env):
    store, _, sweep = env
    new = sweep([ok("n0", faults=[xid(3)]), ok("n2", faults=[xid(1)])])
    assert len(new) == 2
    sweep([ok("n0", faults=[xid(3, code=79)]), ok("n2")])
    n0, n2 = rows(store, "source = 'fault'")
    assert n0["severity"] == "P1" and n0["job"] == "llm"        # a running job interrupted
    assert n2["severity"] == "P2" and n2["job"] is None         # a card fault needing action
    assert n0["count"] == 2 and n0["action"] == "reboot_node"
    watch = sweep([ok("n3", faults=[xid(0, 13, Action.WATCH, Severity.WARNING)])])
    assert rows(store, f"id = {watch[0]}")[0]["severity"] == "P3"


def test_many_cards_one_node_group_into_one_incident(env):
    store, _, sweep = env
    new = sweep([ok("n2", faults=[xid(i, 48, Action.RESET_CARD) for i in range(5)])])
    assert len(new) == 1
    (row,) = rows(store)
    assert row["card_idx"] is None and json.loads(row["cards"]) == [0, 1, 2, 3, 4] and "5 cards" in row["title"]


def test_node_down_inhibits_cards_and_rack_groups_nodes(env):
    store, _, sweep = env
    sweep([ok("n5", cards=[card(0, temp=90.0)])])
    assert rows(store, "source = 'threshold'")[0]["state"] == "open"
    sweep([down("n5")])
    node_incident = rows(store, "source = 'node'")[0]
    assert rows(store, "source = 'threshold'")[0]["suppressed_by"] == node_incident["id"]
    # three nodes of rack A01 lost in the same sweep: one rack incident, the node incidents inhibited
    new = sweep([down("n0"), down("n1"), down("n2"), down("n5")])
    opened = rows(store, f"id IN ({','.join(map(str, new))})")
    assert [r["source"] for r in opened] == ["rack"] and opened[0]["severity"] == "P1"


def test_auto_resolve_after_clear_sweeps_and_hysteresis(env):
    store, _, sweep = env
    sweep([ok("n4", cards=[card(0, temp=88.0)])])
    sweep([ok("n4", cards=[card(0, temp=82.0)])])          # above warn - margin: still breached
    assert rows(store)[0]["clear_sweeps"] == 0
    for _ in range(2):
        sweep([ok("n4", cards=[card(0, temp=70.0)])])
    assert rows(store)[0]["state"] != "resolved"
    sweep([ok("n4", cards=[card(0, temp=70.0)])])
    row = rows(store)[0]
    assert row["state"] == "resolved" and row["resolved_by"] == "auto"


def test_event_fault_stays_open_while_the_card_is_critical(env):
    store, _, sweep = env
    sweep([ok("n6", cards=[card(2, temp=None, health=Health.CRITICAL)], faults=[xid(2)])])
    for _ in range(4):
        sweep([ok("n6", cards=[card(2, temp=None, health=Health.CRITICAL)])])
    (row,) = rows(store)                                         # no duplicate "health critical" incident
    assert row["state"] == "open" and row["code"] == "Xid 79"
    for _ in range(3):
        sweep([ok("n6", cards=[card(2)])])
    assert rows(store)[0]["state"] == "resolved"


def test_hostkey_collector_and_snapshot(env):
    store, _, sweep = env
    for _ in range(3):
        sweep([ok("n7", cards=[card(0, temp=60.0)])])
    key = NodeReport("n3", False, T0, 0.2, None, error="HOST KEY CHANGED for [127.0.0.1]:2222; refused",
                     faults=(Fault("ssh-hostkey-changed", Severity.CRITICAL, Action.ISOLATE, "changed"),))
    sweep([key, down("n4", "nvidia-smi timed out after 8 s: no stderr"), ok("n7", cards=[card(0, temp=96.0)])])
    by_source = {r["source"]: r for r in rows(store)}
    assert by_source["hostkey"]["severity"] == "P2" and by_source["collector"]["severity"] == "P3"
    assert by_source["threshold"]["severity"] == "P2"
    snap = store.conn.execute("SELECT count(*) FROM incident_samples WHERE incident_id = ?",
                              (by_source["threshold"]["id"],)).fetchone()[0]
    assert snap == 4                                             # 15 min before (3 sweeps) + the opening one
    sweep([ok("n7", cards=[card(0, temp=97.0)])])
    assert store.conn.execute("SELECT count(*) FROM incident_samples WHERE incident_id = ?",
                              (by_source["threshold"]["id"],)).fetchone()[0] == 5   # and after



def _refused(node, presented=True):
    error = "HOST KEY CHANGED for [127.0.0.1]:2222: got ssh-ed25519 SHA256:new, known_hosts has SHA256:old; refused"
    faults = (Fault("ssh-hostkey-changed", Severity.CRITICAL, Action.ISOLATE, error),) if presented else ()
    return NodeReport(node, False, T0, 0.2, "nvidia", error=error + ("" if presented else " (still refused; next "
                                                                       "attempt in 8 s)"), faults=faults)


def test_changed_host_key_never_clears_while_refused_stale_or_down(env):
    """Issue 16: during the retry backoff the key is not seen again (no fault); that is not 'clear'."""
    store, _, sweep = env
    sweep([_refused("n3")])
    for report in [_refused("n3", presented=False)] * 4 + [down("n3", "connection refused by 127.0.0.1:2222")]:
        sweep([report, ok("n7")])
    for _ in range(4):
        sweep([ok("n7")], stale=("n3",))                   # still busy, or not in the sweep at all
        sweep([ok("n7")])
    (row,) = rows(store, "source = 'hostkey'")
    assert row["state"] == "open" and row["resolved_at"] is None and row["count"] == 6
    assert "connection refused" in row["evidence"]            # the latest reason is the evidence
    assert rows(store, "source = 'node'") == []               # no second 'not answering' incident for it


def test_changed_host_key_clears_only_after_verified_connections(env):
    store, _, sweep = env
    sweep([_refused("n3")])
    sweep([ok("n3")])                                         # the original key is back: verified
    sweep([ok("n3")])
    assert rows(store, "source = 'hostkey'")[0]["state"] == "open"
    sweep([ok("n3")])
    row = rows(store, "source = 'hostkey'")[0]
    assert row["state"] == "resolved" and row["resolved_by"] == "auto"


def test_operator_resolves_a_changed_host_key_after_trusting_the_new_one(env):
    store, _, sweep = env
    (incident,) = sweep([_refused("n3")])
    incidents.resolve(store.conn, incident, "li.wei", note="reinstalled; new key verified by console")
    assert rows(store, f"id = {incident}")[0]["resolved_by"] == "li.wei"
    sweep([ok("n3")])
    assert [r["state"] for r in rows(store, "source = 'hostkey'")] == ["resolved"]

def test_lifecycle_timing_and_repeat_offenders(env):
    store, _, sweep = env
    (a,) = sweep([ok("n2", faults=[xid(1, 48, Action.RESET_CARD)])])
    incidents.acknowledge(store.conn, a, "li.wei", now=T0 + 71)
    with pytest.raises(incidents.IncidentError):
        incidents.acknowledge(store.conn, a, "li.wei")
    incidents.silence(store.conn, a, T0 + 3600, "li.wei", now=T0 + 80)
    incidents.resolve(store.conn, a, "li.wei", "card reset", now=T0 + 311)
    with pytest.raises(incidents.IncidentError):
        incidents.resolve(store.conn, a, "li.wei")
    t = incidents.timing(store.conn, T0, T0 + 1000)
    assert t.opened == 1 and t.mtta_s == pytest.approx(60) and t.mttr_s == pytest.approx(300)
    for _ in range(2):
        sweep([ok("n2", faults=[xid(1, 48, Action.RESET_CARD)])])
        store.conn.execute("UPDATE incidents SET state='resolved' WHERE state != 'resolved'")
    offenders = incidents.repeat_offenders(store.conn, now=T0 + 100)
    assert ("card", "S-1", 3) in offenders and ("node", "n2", 3) in offenders


def test_cli_lifecycle_and_bad_changes_exit_2(env, capsys):
    store, _, sweep = env
    (a,) = sweep([ok("n2", faults=[xid(1, 48, Action.RESET_CARD)])])
    db = store.path
    assert run(["incidents", "list", "--db", db]) == 0
    assert f"#{a}" in capsys.readouterr().out
    assert run(["incidents", "ack", str(a), "--by", "zhang", "--db", db]) == 0
    assert run(["incidents", "ack", str(a), "--by", "zhang", "--db", db]) == 2
    assert "cannot acknowledge, it is acknowledged" in capsys.readouterr().err
    assert run(["incidents", "note", str(a), "reseated the card", "--db", db]) == 0
    assert run(["incidents", "resolve", str(a), "--by", "zhang", "--note", "ok", "--db", db]) == 0
    assert run(["incidents", "list", "--db", db, "--state", "resolved", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert listed[0]["acknowledged_by"] == "zhang" and listed[0]["resolved_by"] == "zhang"
    assert run(["incidents", "resolve", "999", "--by", "zhang", "--db", db]) == 2


def test_knowledge_base_has_both_languages_everywhere():
    for entry in knowledge.all_entries():
        for text in (entry.meaning_en, entry.action_en):
            assert text and not any("\u4e00" <= ch <= "\u9fff" for ch in text)
        for text in (entry.meaning_zh, entry.action_zh):
            assert text and any("\u4e00" <= ch <= "\u9fff" for ch in text)
    assert knowledge.lookup("Xid 79").action("zh_CN").startswith("将作业")
    assert knowledge.lookup("80E01801") is knowledge.ASCEND


def test_health_incident_becomes_the_fault_that_explains_it(env):
    store, _, sweep = env
    sweep([ok("n6", cards=[card(5, health=Health.CRITICAL)])])           # the table says Alarm first
    code = Fault("80E01801", Severity.CRITICAL, Action.RESTART_JOB, "NPU 5 chip 0: Alarm: HBM ECC", 5)
    new = sweep([ok("n6", cards=[card(5, health=Health.CRITICAL)], faults=[code])])
    assert new == []
    (row,) = rows(store)
    assert row["code"] == "80E01801" and row["source"] == "fault" and row["action"] == "restart_job"


def test_generic_health_fault_becomes_the_vendor_code(env):
    store, _, sweep = env
    health = Fault("HEALTH", Severity.CRITICAL, Action.ISOLATE, "ascend card 5: state 'critical'", 5)
    sweep([ok("n6", cards=[card(5, health=Health.CRITICAL)], faults=[health])])
    code = Fault("8C084E00", Severity.CRITICAL, Action.RESET_CARD, "NPU 5 chip 0: Alarm: link down", 5)
    assert sweep([ok("n6", cards=[card(5, health=Health.CRITICAL)], faults=[code])]) == []
    (row,) = rows(store)
    assert row["code"] == "8C084E00"


def test_thresholds_from_the_site_file_and_power(tmp_path):
    import tomllib

    from console.site import SiteError, parse_site

    text = """
[site]
name = "t"
[thresholds]
temp_warn_c = 80
temp_crit_c = 90
[thresholds.vendors.ascend]
temp_warn_c = 70
power_warn_w = 300
"""
    site = parse_site(tomllib.loads(text), "site.toml", text)
    t = incidents.thresholds_from(site.thresholds)
    assert t.temp_limits("nvidia") == (80.0, 90.0) and t.temp_limits("ascend") == (70.0, 90.0)
    assert t.power_warn_w["ascend"] == 300.0 and t.power_warn_w["nvidia"] == 750.0
    store = Store(str(tmp_path / "ops.db"))
    engine = incidents.IncidentEngine(store.conn, thresholds=t)
    npu = CardSample(0, health=Health.OK, temperature_c=72.0, power_w=310.0)
    report = NodeReport("npu-1", True, T0, 0.1, "ascend", (npu,))
    store.write_sweep(T0, T0 + 1, [report])
    engine.process(T0 + 1, [report], ())
    assert {r["code"] for r in rows(store)} == {"TEMP", "POWER"}
    store.close()
    bad = '[site]\nname = "t"\n[thresholds]\ntemp_warn_c = 90\ntemp_crit_c = 80\n'
    with pytest.raises(SiteError) as exc:
        parse_site(tomllib.loads(bad), "site.toml", bad)
    assert "must be above temp_warn_c" in exc.value.problems[0]


def test_health_fault_after_an_explained_card_does_not_open_a_second_incident(env):
    store, _, sweep = env
    sweep([ok("n6", cards=[card(3, temp=None, health=Health.CRITICAL)], faults=[xid(3)])])
    health = Fault("HEALTH", Severity.CRITICAL, Action.ISOLATE, "nvidia card 3: state 'critical'", 3)
    assert sweep([ok("n6", cards=[card(3, temp=None, health=Health.CRITICAL)], faults=[health])]) == []
    assert [r["code"] for r in rows(store)] == ["Xid 79"]


def test_a_hot_card_is_one_incident_not_a_threshold_and_a_thermal_fault(env):
    store, _, sweep = env
    hot = Fault("THERMAL", Severity.CRITICAL, Action.RESTART_JOB, "nvidia card 0: at or above 95 °C", 0)
    sweep([ok("n5", cards=[card(0, temp=97.0)], faults=[hot])])
    assert [r["code"] for r in rows(store)] == ["TEMP"]


def test_a_prometheus_source_down_is_one_incident_not_one_per_node(env):
    store, _engine, sweep = env
    err = "source unavailable: http://127.0.0.1:9/: [Errno 111] Connection refused"
    sweep([down(f"n{i}", err) for i in range(6)] + [ok("n6")])
    open_ = rows(store, "state = 'open'")
    assert [r["title"] for r in open_] == ["Prometheus source http://127.0.0.1:9/: 6 node(s) not read"]
    assert open_[0]["severity"] == "P1"                 # n0 and n1 run the job llm
    # a node of a source with no fresh series is a node that does not answer, not a failed vendor tool
    sweep([down("n4", "stale: no series for n4 newer than 20 s in http://127.0.0.1:9/"), ok("n6")])
    titles = {r["title"] for r in rows(store, "state = 'open'")}
    assert "n4: not answering" in titles


def test_a_p1_becomes_p2_once_the_job_trains_again_without_the_card(env):
    store, _engine, sweep = env
    store.conn.execute("INSERT INTO jobs(name, state, last_progress_at) VALUES ('llm', 'running', ?)", (T0,))
    store.conn.commit()
    sweep([ok("n0", faults=[xid(3)])])
    (inc,) = rows(store, "state = 'open'")
    assert inc["severity"] == "P1"
    # the job hangs on the lost card: no progress since, it stays P1
    store.conn.execute("UPDATE jobs SET state = 'stalled'")
    store.conn.commit()
    sweep([ok("n0", faults=[xid(3)])])
    assert rows(store, f"id = {inc['id']}")[0]["severity"] == "P1"
    # it resumed from its checkpoint without that card and trains: the card still needs its action, the job
    # is no longer at risk
    store.conn.execute("UPDATE jobs SET state = 'running', last_progress_at = ?", (inc["opened_at"] + 600,))
    store.conn.commit()
    sweep([ok("n0", faults=[xid(3)])])
    after = rows(store, f"id = {inc['id']}")[0]
    assert after["severity"] == "P2" and after["state"] == "open"
    notes = store.conn.execute("SELECT author, text FROM incident_notes WHERE incident_id = ?", (inc["id"],)).fetchall()
    assert notes == [("mixops", "P1 → P2: job llm trains again since this opened (or has finished)")]
