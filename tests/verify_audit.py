#!/usr/bin/env python3
"""Re-verifies a `remediate audit export` (JSON Lines) without remediate, Python 3 stdlib only.

Per line: seq = previous seq + 1 (1 first); prev_hash = previous hash (64 zeros first);
hash = SHA-256 of the RFC 8785 canonical JSON of the record without "hash". Records hold
only strings, integers, nulls, arrays and objects with ASCII keys, for which RFC 8785 is
exactly sorted keys + compact separators + ensure_ascii=False + UTF-8; anything else (a
float, say) is reported rather than hashed differently. Usage: verify_audit.py FILE (- for
stdin). Exit 0 when every line verifies, 1 naming the first broken line, 2 on misuse.
"""
import hashlib, json, sys


def plain(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return True
    if isinstance(v, int):
        return abs(v) <= 2**53  # RFC 8785 numbers are IEEE doubles
    if isinstance(v, list):
        return all(map(plain, v))
    return isinstance(v, dict) and all(k.isascii() and plain(x) for k, x in v.items())


def problem(record, seq, prev):
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        return "not a JSON object with a string `hash`"
    body = {k: v for k, v in record.items() if k != "hash"}
    if not plain(body):
        return "holds a value (a float?) whose RFC 8785 form this checker does not produce"
    if body.get("seq") != seq:
        return f"seq is {body.get('seq')!r}, expected {seq}: records were deleted, inserted or reordered"
    if body.get("prev_hash") != prev:
        return "prev_hash is not the previous record's hash: a record was removed, moved or re-hashed"
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if hashlib.sha256(canonical.encode("utf-8")).hexdigest() != record["hash"]:
        return "hash does not match the content: the record was edited"


def main(args):
    if len(args) != 1:
        print("usage: verify_audit.py EXPORT.jsonl (or - for standard input)", file=sys.stderr)
        return 2
    prev, seq = "0" * 64, 0
    with sys.stdin.buffer if args[0] == "-" else open(args[0], "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"), parse_constant=float)  # NaN: a float, refused
                wrong = problem(record, seq + 1, prev)
            except ValueError as e:  # also invalid UTF-8
                wrong = f"not valid UTF-8 JSON ({e})"
            if wrong:
                print(f"line {number}: {wrong}", file=sys.stderr)
                return 1
            prev, seq = record["hash"], seq + 1
    print(f"ok: {seq} records verified, head {prev if seq else '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
