#!/usr/bin/env python3
"""Where the session processes' CPU goes in `bench -only qr` (or `-only process`) rounds.

Record the whole machine while the bench runs, keeping its binaries so that perf can read the
session's symbols, then split:

    BENCH_KEEP=1 KUBEBUILDER_ASSETS=... perf record -a -g -F 999 -o /tmp/qr.data -- \
        go run ./bench/cmd/bench -only qr
    python3 hack/session-cpu.py /tmp/qr.data 999

Session processes are grouped into rounds by their start (a new round after 2 s without one). Each of a
session's samples is classed A (before its first QR code's status write ended: the last sample
inside machine.publishQR), B (after that, before the round's median QR, i.e. CPU that other
sessions' codes waited for) or C (later), and put in the first bucket below whose pattern is in
its stack. Figures are CPU ms per session (samples / frequency / sessions).
"""
import collections
import subprocess
import sys

BUCKETS = [
    ('package init', ['runtime.doInit1']),
    ('runtime start', ['runtime.rt0_go.abi0']),
    ('store: whatsmeow schema (sqlstore Upgrade)', ['sqlstore.(*Container).Upgrade']),
    ('store: device row and keys (GetFirstDevice)', ['(*Container).GetFirstDevice']),
    ('store: owner, inbox, cursors, outbox, delivery', ['whatsapp.bindStore', 'inbox.Open', 'events.OpenCursors',
                                                        'whatsapp.startOutbox', 'whatsapp.startDelivery']),
    ('store: other open', ['whatsapp.Opener.Open']),
    ('QR drawing', ['session.renderQR']),
    ('X25519 keys (pre-key pool, device, handshake)', ['curve25519', 'ecdh', 'edwards25519', 'keys.NewKeyPair']),
    ('whatsmeow connect and Noise handshake', ['whatsmeow.(*Client).connect', 'socket.', 'whatsmeow.(*Client).ConnectContext',
                                               'websocket']),
    ('whatsmeow other', ['go.mau.fi/whatsmeow']),
    ('Lease', ['lease.']),
    ('resource GET/watch', ['session.followConnection', 'session.watch']),
    ('status write', ['session.(*statusPublisher)']),
    ('HTTP/TLS transport', ['net/http.', 'crypto/tls.']),
    ('main (flags, logger, config, listeners)', ['main.main']),
    ('state machine other', ['session.(*machine)']),
    ('GC', ['runtime.gcBgMarkWorker', 'runtime.gcStart', 'runtime.gcDrain', 'runtime.bgsweep', 'runtime.bgscavenge']),
    ('sysmon', ['runtime.sysmon']),
    ('scheduler', ['runtime.schedule', 'runtime.mstart']),
]


def bucket(frames):
    for name, patterns in BUCKETS:
        if any(p in f for f in frames for p in patterns):
            return name
    return 'other'


def samples(data):
    out = subprocess.run(['perf', 'script', '-i', data, '--comm', 'session', '-F', 'pid,tid,time,ip,sym'],
                         capture_output=True, text=True, check=True).stdout
    for block in out.split('\n\n'):
        lines = [l for l in block.split('\n') if l.strip()]
        if not lines:
            continue
        head = lines[0].split()
        pid, t = int(head[0].split('/')[0]), float(head[1].rstrip(':'))
        frames = [(l.strip().split(None, 1) + [''])[1] or l.strip() for l in lines[1:]]
        yield pid, t, frames


def main():
    data, hz = sys.argv[1], float(sys.argv[2])
    S = list(samples(data))
    first, qr_first, qr = {}, {}, {}
    for pid, t, fr in S:
        first[pid] = min(first.get(pid, t), t)
        if any('publishQR' in f for f in fr):
            qr_first[pid] = min(qr_first.get(pid, t), t)
    for pid, t, fr in S:  # the first code's write: publishQR samples within 0.5 s of the first
        if pid in qr_first and t - qr_first[pid] < 0.5 and any('publishQR' in f for f in fr):
            qr[pid] = max(qr.get(pid, 0), t)
    rounds = []
    for pid in sorted(first, key=first.get):
        if rounds and first[pid] - first[rounds[-1][-1]] < 2:
            rounds[-1].append(pid)
        else:
            rounds.append([pid])
    for r in rounds:
        q = sorted(qr[p] for p in r if p in qr)
        if not q:
            continue
        median = q[(len(q) + 1) // 2 - 1]
        phases, buckets = collections.Counter(), collections.Counter()
        members = set(r)
        for pid, t, fr in S:
            if pid not in members:
                continue
            phase = 'A' if pid in qr and t <= qr[pid] else ('B' if t <= median else 'C')
            phases[phase] += 1
            buckets[(phase, bucket(fr))] += 1
        per = lambda v: 1000 * v / hz / len(r)
        print(f'round of {len(r)} sessions ({len(q)} with a QR sample): CPU ms per session '
              + ', '.join(f'{k} {per(v):.1f}' for k, v in sorted(phases.items())))
        for (phase, name), v in sorted(buckets.items(), key=lambda x: (x[0][0], -x[1])):
            if per(v) >= 0.3:
                print(f'  {phase} {per(v):6.1f}  {name}')


if __name__ == '__main__':
    main()
