"""pprofpb — a decoder of pprof's profile.proto for heapprof's Python
tests (tests/integration/scrape, tests/integration/symbols): profiles are
read as stored, independently of `go tool pprof`, which the tests run
beside it.

decode_profile(raw) turns a Profile message (gunzipped: load(path) does
both) into plain Python data; every field of proto/profile.proto that
heapprof writes or a reader may look at is kept, with the field numbers
given at each message. Strings stay indexes into string_table (bytes);
string_at(p, i) reads one. Unknown fields are skipped, as protobuf does.

A sample's labels (Label{key 1, str 2, num 3, num_unit 4}) stay in the
order stored; labels(p, s) resolves their strings, string_labels(p, s)
and label_set(p, s) give the string labels alone (issue 14's tests:
tests/integration/labels).
"""

import gzip


class DecodeError(Exception):
    pass


# ---------------------------------------------------------------------------
# the wire format
# ---------------------------------------------------------------------------

def read_varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise DecodeError("varint over 10 bytes")


def fields(buf):
    """(field number, wire type, value) of each field of one message: an
    int for varints and fixed widths, bytes for length-delimited ones."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise DecodeError("field number 0")
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 1:
            v, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == 5:
            v, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        elif wt == 2:
            n, i = read_varint(buf, i)
            if i + n > len(buf):
                raise DecodeError("length-delimited field past the end")
            v, i = bytes(buf[i:i + n]), i + n
        else:
            raise DecodeError(f"wire type {wt}")
        if i > len(buf):
            raise DecodeError("fixed-width field past the end")
        yield num, wt, v


def signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def ints(wt, v):
    """A repeated integer field's values, packed (wire type 2) or not."""
    if wt != 2:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = read_varint(v, i)
        out.append(x)
    return out


def scalar(msg, spec):
    """Decodes a message of scalar fields: spec maps number -> name; int64
    fields come out signed, bools as 0/1."""
    out = {name: 0 for name in spec.values()}
    for num, wt, v in fields(msg):
        if num in spec and wt != 2:
            out[spec[num]] = signed(v)
    return out


# ---------------------------------------------------------------------------
# profile.proto
# ---------------------------------------------------------------------------

SAMPLE_LABEL = {1: "key", 2: "str", 3: "num", 4: "num_unit"}
MAPPING = {1: "id", 2: "memory_start", 3: "memory_limit", 4: "file_offset",
           5: "filename", 6: "build_id", 7: "has_functions", 8: "has_filenames",
           9: "has_line_numbers", 10: "has_inline_frames"}
LINE = {1: "function_id", 2: "line", 3: "column"}
FUNCTION = {1: "id", 2: "name", 3: "system_name", 4: "filename", 5: "start_line"}


def decode_location(msg):
    """Location: id 1, mapping_id 2, address 3, line 4 (repeated Line,
    innermost inlined call first), is_folded 5."""
    loc = {"id": 0, "mapping_id": 0, "address": 0, "line": [], "is_folded": 0}
    for num, wt, v in fields(msg):
        if num in (1, 2, 3, 5) and wt != 2:
            loc[{1: "id", 2: "mapping_id", 3: "address", 5: "is_folded"}[num]] = v
        elif num == 4:
            loc["line"].append(scalar(v, LINE))
    return loc


def decode_sample(msg):
    """Sample: location_id 1 (leaf first), value 2, label 3."""
    s = {"location_id": [], "value": [], "label": []}
    for num, wt, v in fields(msg):
        if num == 1:
            s["location_id"] += ints(wt, v)
        elif num == 2:
            s["value"] += [signed(x) for x in ints(wt, v)]
        elif num == 3:
            s["label"].append(scalar(v, SAMPLE_LABEL))
    return s


def decode_profile(raw):
    """A Profile message as plain Python data; strings stay bytes."""
    p = {"sample_type": [], "sample": [], "mapping": [], "location": [],
         "function": [], "string_table": [], "comment": [], "time_nanos": 0,
         "duration_nanos": 0, "period": 0, "period_type": (0, 0),
         "default_sample_type": 0, "drop_frames": 0, "keep_frames": 0}
    for num, wt, v in fields(raw):
        if num == 1:
            t = scalar(v, {1: "type", 2: "unit"})
            p["sample_type"].append((t["type"], t["unit"]))
        elif num == 2:
            p["sample"].append(decode_sample(v))
        elif num == 3:
            p["mapping"].append(scalar(v, MAPPING))
        elif num == 4:
            p["location"].append(decode_location(v))
        elif num == 5:
            p["function"].append(scalar(v, FUNCTION))
        elif num == 6:
            p["string_table"].append(v if wt == 2 else b"")
        elif num == 13:
            p["comment"] += [signed(x) for x in ints(wt, v)]
        elif num == 11:
            t = scalar(v, {1: "type", 2: "unit"})
            p["period_type"] = (t["type"], t["unit"])
        elif num in (7, 8, 9, 10, 12, 14):
            p[{7: "drop_frames", 8: "keep_frames", 9: "time_nanos",
               10: "duration_nanos", 12: "period",
               14: "default_sample_type"}[num]] = signed(v)
    return p


def load(path):
    """The decoded profile in a file, gzipped (as heapprof writes it) or
    not."""
    return decode_profile(load_raw(path))


def strings(p):
    return p["string_table"]


def string_at(p, i):
    st = strings(p)
    return st[i].decode("utf-8", "replace") if 0 <= i < len(st) else None


def labels(p, sample):
    """A sample's labels as stored, in order: [(key, str, num, num_unit)]
    with the strings resolved; str and num_unit are None where the index
    is 0 (proto3's "not set": string_table[0] is "")."""
    out = []
    for lab in sample["label"]:
        out.append((string_at(p, lab["key"]),
                    string_at(p, lab["str"]) if lab["str"] else None,
                    lab["num"],
                    string_at(p, lab["num_unit"]) if lab["num_unit"] else None))
    return out


def string_labels(p, sample):
    """[(key, value)] of a sample's string labels (Label.str set), in the
    order stored."""
    return [(k, v) for k, v, _, _ in labels(p, sample) if v is not None]


def label_set(p, sample):
    """A sample's string labels as a hashable set: a tuple of (key, value)
    sorted by key; () for a sample with none."""
    return tuple(sorted(string_labels(p, sample)))


def load_raw(path):
    """The Profile message in a file, gunzipped if it is gzipped: bytes,
    for tests that look at the encoding itself (with fields())."""
    with open(path, "rb") as f:
        raw = f.read()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def value_index(p):
    """'alloc_space/bytes' -> index of that value in every sample."""
    return {f"{string_at(p, t)}/{string_at(p, u)}": i
            for i, (t, u) in enumerate(p["sample_type"])}
