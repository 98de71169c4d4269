#!/usr/bin/env python3
"""Checks the verifiable audit log of remediate without remediate, Python 3 stdlib only.

The contract is in the remediation-audit crate docs ("The verifiable log"): leaf hash =
SHA-256(0x00 || canonical JSON of the whole record), node = SHA-256(0x01 || left || right),
RFC 9162 inclusion and consistency proofs, tree heads signed with Ed25519 over

    remediation-audit-tree-head-v1\\n{key_id}\\n{tree_size}\\n{root_hash}\\n{timestamp}

and key id = first 8 bytes of SHA-256(public key), hex. Ed25519 verification follows the
reference code of RFC 8032 section 6 (cofactorless, s < L enforced).

Usage (every file is JSON as remediate writes it; KEYS is the published key set):
  verify_log.py head KEYS HEAD                          a signed tree head verifies
  verify_log.py inclusion KEYS HEAD PROOF [RECORD]      PROOF puts a leaf in HEAD's tree; with
                                                        RECORD (one exported record), that leaf
                                                        is this record
  verify_log.py consistency KEYS OLD NEW PROOF          the log at NEW extends the one at OLD
  verify_log.py inclusion-bundle KEYS BUNDLE [HEAD]    every record of BUNDLE (the JSON of
                                                        `remediate audit prove ID`) is in the
                                                        tree of HEAD (a head you hold), or of
                                                        the bundle's own signed head
  verify_log.py consistency-bundle KEYS OLD BUNDLE      the log at BUNDLE's signed head (the
                                                        JSON of `remediate audit consistency
                                                        N`) extends the one at OLD, a head you
                                                        hold
  verify_log.py ct-vectors DIR                          runs Certificate Transparency vectors
                                                        (transparency-dev/merkle testdata format)
  verify_log.py selftest                                RFC 8032 Ed25519 test vectors
Exit 0 when it verifies, 1 when it does not (the reason on stderr), 2 on misuse or unreadable
input.
"""
import base64, hashlib, json, os, re, sys

# --- Ed25519 verification, after RFC 8032 section 6 -------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    x = (a[1] - a[0]) * (b[1] - b[0]) % P
    y = (a[1] + a[0]) * (b[1] + b[0]) % P
    c = 2 * a[3] * b[3] * D % P
    d = 2 * a[2] * b[2] % P
    e, f, g, h = y - x, d - c, d + c, y + x
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 % P == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _decompress(s):
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)


def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    return _equal(_mul(s, G), _add(r, _mul(h, a)))


# --- The Merkle tree, after RFC 9162 section 2.1 ---------------------------------------------

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_problem(index, size, leaf, path, root):
    """None when `path` proves `leaf` at `index` in the tree of `size` leaves with `root`."""
    if index >= size:
        return f"leaf {index} is not in a tree of {size} leaves"
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return "the proof has too many hashes"
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        return "the proof has too few hashes"
    if r != root:
        return "the proof does not lead to the root hash"
    return None


def consistency_problem(old_size, new_size, old_root, new_root, path):
    """None when `path` proves the tree (new_size, new_root) extends (old_size, old_root)."""
    if new_size < old_size:
        return f"the new tree ({new_size}) is smaller than the old ({old_size}): the log was truncated"
    if old_size == 0:
        return "a consistency proof from the empty tree is meaningless"
    if old_size == new_size:
        if path:
            return "equal sizes need an empty proof"
        return None if old_root == new_root else "equal sizes but different roots: the log was rewritten"
    if not path:
        return "the proof is empty"
    if old_size & (old_size - 1) == 0:
        path = [old_root] + list(path)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return "the proof has too many hashes"
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        return "the proof has too few hashes"
    if fr != old_root:
        return "the proof does not lead to the old root: the log does not extend the old tree"
    if sr != new_root:
        return "the proof does not lead to the new root"
    return None


# --- Parsing the JSON remediate writes ------------------------------------------------------


class Bad(Exception):
    """The input does not have the form remediate writes."""


def load(path):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"), parse_constant=float)
    except (OSError, ValueError) as e:
        raise Bad(f"{path}: cannot read JSON ({e})")


def fields(obj, names, what):
    if not isinstance(obj, dict) or set(obj) != set(names):
        raise Bad(f"{what} must be a JSON object with exactly the fields {', '.join(sorted(names))}")
    return [obj[n] for n in names]


def hexbytes(text, length, what):
    if not isinstance(text, str) or not re.fullmatch(f"[0-9a-f]{{{2 * length}}}", text):
        raise Bad(f"{what} must be {2 * length} lowercase hex characters")
    return bytes.fromhex(text)


def size(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise Bad(f"{what} must be a non-negative integer")
    return value


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z")


def parse_head(obj, what):
    key_id, tree_size, root_hash, timestamp, signature = fields(
        obj, ["key_id", "tree_size", "root_hash", "timestamp", "signature"], what
    )
    hexbytes(key_id, 8, f"{what} key_id")
    if not isinstance(timestamp, str) or not TIMESTAMP.fullmatch(timestamp):
        raise Bad(f"{what} timestamp must be RFC 3339 in UTC as remediate writes it")
    return {
        "key_id": key_id,
        "tree_size": size(tree_size, f"{what} tree_size"),
        "root_hash": hexbytes(root_hash, 32, f"{what} root_hash"),
        "timestamp": timestamp,
        "signature": hexbytes(signature, 64, f"{what} signature"),
    }


def head_problem(keys_obj, head_obj, what="tree head"):
    """(problem or None, parsed head)."""
    (keys,) = fields(keys_obj, ["keys"], "the key set")
    if not isinstance(keys, list):
        raise Bad("the key set's `keys` must be an array")
    head = parse_head(head_obj, what)
    for key in keys:
        key_id, algorithm, public_key = fields(key, ["key_id", "algorithm", "public_key"], "a published key")
        if key_id != head["key_id"]:
            continue
        public = hexbytes(public_key, 32, f"public key {key_id}")
        if algorithm != "ed25519":
            return f"key {key_id} uses algorithm {algorithm!r}, not ed25519", head
        if hashlib.sha256(public).hexdigest()[:16] != key_id:
            return f"key {key_id} is listed under an id that is not its own", head
        message = "\n".join(
            ["remediation-audit-tree-head-v1", key_id, str(head["tree_size"]), head["root_hash"].hex(), head["timestamp"]]
        ).encode("utf-8")
        if not ed25519_verify(public, message, head["signature"]):
            return f"the {what}'s signature does not verify under key {key_id}", head
        return None, head
    return f"the {what} names key {head['key_id']}, which is not in the key set", head


def record_entry(record):
    """The canonical JSON of one exported record (RFC 8785 for the values records hold)."""
    if not isinstance(record, dict) or not all(k.isascii() for k in record):
        raise Bad("the record must be a JSON object with ASCII keys")
    if any(isinstance(v, float) for v in record.values()):
        raise Bad("the record holds a float, which records never do")
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- Commands -----------------------------------------------------------------------------


def cmd_head(keys, head):
    problem, parsed = head_problem(load(keys), load(head))
    return problem, f"tree head of {parsed['tree_size']} records verifies under key {parsed['key_id']}"


def cmd_inclusion(keys, head, proof, record=None):
    return inclusion_in(load(keys), load(head), load(proof), load(record) if record is not None else None)


def cmd_consistency(keys, old, new, proof):
    keys = load(keys)
    problem, old_head = head_problem(keys, load(old), "old tree head")
    if problem:
        return problem, None
    problem, new_head = head_problem(keys, load(new), "new tree head")
    if problem:
        return problem, None
    old_size, new_size, path = fields(load(proof), ["old_size", "new_size", "path"], "the proof")
    if not isinstance(path, list):
        raise Bad("the proof's path must be an array")
    path = [hexbytes(p, 32, "a path hash") for p in path]
    if (size(old_size, "old_size"), size(new_size, "new_size")) != (old_head["tree_size"], new_head["tree_size"]):
        return "the proof's sizes are not the sizes of the two heads", None
    ok = f"the log of {new_size} records extends the one of {old_size}"
    if old_size == 0:
        if old_head["root_hash"] != EMPTY_ROOT:
            return "the old head is of an empty tree but its root is not the empty root", None
        if path:
            return "every tree extends the empty tree; the proof must be empty", None
        if new_size == 0 and new_head["root_hash"] != EMPTY_ROOT:
            return "the new head is of an empty tree but its root is not the empty root", None
        return None, ok
    return consistency_problem(old_size, new_size, old_head["root_hash"], new_head["root_hash"], path), ok


def inclusion_in(keys_obj, head_obj, proof_obj, record):
    """cmd_inclusion on parsed JSON: (problem or None, message)."""
    problem, parsed = head_problem(keys_obj, head_obj)
    if problem:
        return problem, None
    index, tree_size, leaf, path = fields(proof_obj, ["leaf_index", "tree_size", "leaf_hash", "path"], "the proof")
    index, tree_size = size(index, "leaf_index"), size(tree_size, "tree_size")
    leaf = hexbytes(leaf, 32, "leaf_hash")
    if not isinstance(path, list):
        raise Bad("the proof's path must be an array")
    path = [hexbytes(p, 32, "a path hash") for p in path]
    if tree_size != parsed["tree_size"]:
        return f"the proof is for a tree of {tree_size} records, the head for {parsed['tree_size']}", None
    if record is not None:
        entry = record_entry(record)
        if record.get("seq") != index + 1:
            return f"the record has seq {record.get('seq')!r}, but the proof is for leaf {index} (seq {index + 1})", None
        if leaf_hash(entry) != leaf:
            return f"record {index + 1}'s leaf hash is not the proof's leaf hash: it is not the record that was logged", None
    problem = inclusion_problem(index, tree_size, leaf, path, parsed["root_hash"])
    return problem, f"record {index + 1} is in the log of {tree_size} records"


def cmd_inclusion_bundle(keys, bundle, head=None):
    keys, bundle = load(keys), load(bundle)
    tree_size, tree_head, proofs = fields(bundle, ["tree_size", "tree_head", "proofs"], "the bundle")
    head_obj = load(head) if head is not None else tree_head
    if head_obj is None:
        return f"the bundle has no signed head of {tree_size} records; give the head you hold", None
    if not isinstance(proofs, list) or not proofs:
        return "the bundle holds no proof", None
    for item in proofs:
        record, proof = fields(item, ["record", "proof"], "a bundled proof")
        problem, _ = inclusion_in(keys, head_obj, proof, record)
        if problem:
            return problem, None
    return None, f"{len(proofs)} records are in the log of {tree_size} records"


def cmd_consistency_bundle(keys, old, bundle):
    keys, bundle = load(keys), load(bundle)
    _, new_head, proof = fields(bundle, ["old_head", "tree_head", "proof"], "the bundle")
    old_obj = load(old)
    problem, old_head = head_problem(keys, old_obj, "old tree head")
    if problem:
        return problem, None
    problem, parsed_new = head_problem(keys, new_head, "new tree head")
    if problem:
        return problem, None
    old_size, new_size, path = fields(proof, ["old_size", "new_size", "path"], "the proof")
    if not isinstance(path, list):
        raise Bad("the proof's path must be an array")
    path = [hexbytes(p, 32, "a path hash") for p in path]
    if (size(old_size, "old_size"), size(new_size, "new_size")) != (old_head["tree_size"], parsed_new["tree_size"]):
        return "the proof's sizes are not the sizes of the two heads", None
    return consistency_problem(old_size, new_size, old_head["root_hash"], parsed_new["root_hash"], path), (
        f"the log of {new_size} records extends the one of {old_size}"
    )


def cmd_ct_vectors(directory):
    passed = failed = 0
    wrong = []
    for base, _, names in sorted(os.walk(directory)):
        for name in sorted(names):
            if not name.endswith(".json"):
                continue
            path = os.path.join(base, name)
            v = load(path)
            raw = lambda text: base64.b64decode(text, validate=True)
            proof = [raw(p) for p in (v.get("proof") or [])]
            garbage = any(len(p) != 32 for p in proof)
            if "leafIdx" in v:
                leaf = raw(v["leafHash"])
                problem = "garbage" if garbage or len(leaf) != 32 else inclusion_problem(
                    v["leafIdx"], v["treeSize"], leaf, proof, raw(v["root"])
                )
            else:
                problem = "garbage" if garbage else consistency_problem(
                    v["size1"], v["size2"], raw(v["root1"]), raw(v["root2"]), proof
                )
            if (problem is not None) != v["wantErr"]:
                wrong.append(f"{path}: {v['desc']}: {problem or 'verified'}")
            elif v["wantErr"]:
                failed += 1
            else:
                passed += 1
    if wrong or passed + failed == 0:
        return "\n".join(wrong) or f"no vectors under {directory}", None
    return None, f"{passed} proofs verified and {failed} corrupted ones refused, as published"


# RFC 8032 section 7.1, TEST 1, TEST 2 and TEST 3: public key, message, signature.
RFC8032 = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


def cmd_selftest():
    for public, message, signature in RFC8032:
        public, message, signature = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
        if not ed25519_verify(public, message, signature):
            return "an RFC 8032 test signature does not verify", None
        if ed25519_verify(public, message + b"x", signature):
            return "a signature verifies for a changed message", None
        flipped = bytes([signature[0] ^ 1]) + signature[1:]
        if ed25519_verify(public, message, flipped):
            return "a changed signature verifies", None
    return None, f"{len(RFC8032)} RFC 8032 test signatures verify, changed ones do not"


COMMANDS = {
    "head": (cmd_head, (2, 2)),
    "inclusion": (cmd_inclusion, (3, 4)),
    "consistency": (cmd_consistency, (4, 4)),
    "inclusion-bundle": (cmd_inclusion_bundle, (2, 3)),
    "consistency-bundle": (cmd_consistency_bundle, (3, 3)),
    "ct-vectors": (cmd_ct_vectors, (1, 1)),
    "selftest": (cmd_selftest, (0, 0)),
}


def main(args):
    command = COMMANDS.get(args[0]) if args else None
    if command is None or not command[1][0] <= len(args) - 1 <= command[1][1]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        problem, ok = command[0](*args[1:])
    except Bad as e:
        print(f"invalid input: {e}", file=sys.stderr)
        return 2
    if problem:
        print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    print(f"ok: {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
