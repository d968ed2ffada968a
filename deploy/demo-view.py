#!/usr/bin/env python3
"""Reads `mosquitto_sub -v` lines (topic, space, payload) and prints each as a home-automation user reads it:
what happened first (event type, reason, confidence), the details after. Used by deploy/demo.sh."""
import json
import sys


def short(v, n=8):
    return (v[:n] + "…") if isinstance(v, str) and len(v) > n else v


def describe(topic: str, payload: str) -> str:
    parts = topic.split("/")
    if parts[0] == "homeassistant":
        return f"discovery   {parts[1]}.{parts[-2]}" + ("" if payload else " (removed)")
    kind = parts[-1] if len(parts) >= 3 else topic
    try:
        p = json.loads(payload) if payload.startswith("{") else payload
    except ValueError:
        p = payload
    if not isinstance(p, dict):
        return f"{kind:<11} {p}"
    if kind == "event":
        t = p.get("type", "?")
        line = f"event       {t.upper():<6} reason {p.get('reason', '?')} ({p.get('confidence', 0):.2f})"
        if t == "end":
            line += f", lasted {p.get('duration_s', 0)} s"
        if p.get("global_reason"):
            line += f" [global model: {p['global_reason']}]"
        return line + f"  episode {short(p.get('episode_id'))} seq {p.get('seq', '-')}"
    if kind == "state":
        if p.get("crying"):
            return f"state       crying: {p.get('reason')} ({p.get('confidence', 0):.2f})"
        return "state       not crying" + (f" (last: {p['reason']})" if p.get("reason") else "")
    if kind == "info":
        models = ", ".join(f"{m.get('slot')} {m.get('name')} {m.get('version')}" for m in p.get("models", []))
        fb = p.get("feedback") or {}
        return f"info        node {p.get('node_id')} v{p.get('software_version')}; {models}; audio {p.get('audio_device')}; feedback answers {sum((fb.get('labels') or {}).values())}"
    if kind == "level":
        return f"level       {p.get('level_dbfs')} dBFS"
    if kind == "config":
        return f"config      {json.dumps(p, separators=(',', ':'))}"
    if kind == "feedback":
        option = p.get("option")
        return f"feedback    last cry was: {'(not answered)' if option in (None, 'None') else option}" + (f" (episode {short(p.get('episode_id'))})" if p.get("episode_id") else "")
    if kind == "diagnostics":
        keys = ["audio_s", "analysis_ticks", "cry_windows", "episodes", "dropped_chunks", "cpu_percent", "rss_mb"]
        return "diagnostics " + ", ".join(f"{k} {p[k]}" for k in keys if k in p)
    if kind == "result":
        return f"result      {p.get('command', '?')}: {'ok' if p.get('ok') else 'refused'} {p.get('message') or ''}".rstrip()
    text = json.dumps(p, separators=(",", ":"))
    return f"{kind:<11} {text[:160]}"


for raw in sys.stdin:
    topic, _, payload = raw.rstrip("\n").partition(" ")
    try:
        print("  mqtt> " + describe(topic, payload), flush=True)
    except Exception:  # a payload this viewer does not know: show it as it came
        print("  mqtt> " + raw.rstrip("\n")[:200], flush=True)
