//! Tamper-evident audit chain: canonical event encoding, the per-event hash
//! chain, and the RFC 9162 Merkle tree built over the same event hashes.
//!
//! Everything here is pure so the server, the CLI and outside verifiers share
//! one definition (see `docs/audit.md`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first event: there is no predecessor to point at.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// RFC 9162 domain-separation prefixes, so a leaf can never pass for a node.
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// The fields that are hashed, exactly as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFields<'a> {
    pub seq: i64,
    pub at: &'a str,
    pub actor: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub work_order: Option<&'a str>,
    /// Canonical JSON text as stored (see [`canonical_detail`]).
    pub detail: &'a str,
    pub prev_hash: &'a str,
}

/// Compact JSON with object keys sorted by bytewise UTF-8 order at every
/// depth, so the same detail always yields the same bytes regardless of how
/// the map was built (and of serde_json's `preserve_order` feature).
pub fn canonical_detail(detail: &Value) -> String {
    let mut out = String::new();
    write_canonical(detail, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // `str` ordering is bytewise over UTF-8, which is what we specify.
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(out, key);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // Scalars: serde_json's own compact text (numbers, escaping).
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// serde_json's string escaping; going through `Value`'s `Display` keeps it
/// infallible (no `Result` to unwrap).
fn push_json_string(out: &mut String, s: &str) {
    out.push_str(&Value::String(s.to_owned()).to_string());
}

/// The bytes that are hashed: a compact JSON object with a fixed key order.
/// `detail` is inserted verbatim because it is already canonical JSON as
/// stored; re-serialising it could silently change what was signed off.
pub fn canonical_encoding(e: &EventFields) -> Vec<u8> {
    let mut out = Vec::with_capacity(192 + e.detail.len());
    encode_into(e, &mut out);
    out
}

/// [`canonical_encoding`] appended to `out`, so a caller hashing many events reuses one
/// buffer.
pub fn encode_into(e: &EventFields, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"seq\":");
    push_i64(out, e.seq);
    out.extend_from_slice(b",\"at\":");
    push_json_str(out, e.at);
    out.extend_from_slice(b",\"actor\":");
    push_json_str(out, e.actor);
    out.extend_from_slice(b",\"role\":");
    push_json_str(out, e.role);
    out.extend_from_slice(b",\"action\":");
    push_json_str(out, e.action);
    out.extend_from_slice(b",\"work_order\":");
    match e.work_order {
        Some(w) => push_json_str(out, w),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"detail\":");
    out.extend_from_slice(e.detail.as_bytes());
    out.extend_from_slice(b",\"prev_hash\":");
    push_json_str(out, e.prev_hash);
    out.push(b'}');
}

/// `n` in decimal, as `i64::to_string` writes it.
fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut rest = n.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A JSON string exactly as serde_json writes it (see [`push_json_string`]), without
/// allocating: `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00xx`
/// (lowercase hex), every other character verbatim.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut unicode = *b"\\u0000";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => {
                unicode[4] = HEX[usize::from(b >> 4)];
                unicode[5] = HEX[usize::from(b & 0xf)];
                &unicode
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(short);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// RFC 9162 leaf hash: SHA-256(0x00 ‖ canonical_encoding).
pub fn leaf_hash(e: &EventFields) -> Hash {
    leaf_hash_in(e, &mut Vec::with_capacity(192 + e.detail.len()))
}

/// [`leaf_hash`], encoding into `scratch` (cleared first), so hashing many events reuses
/// one buffer.
pub fn leaf_hash_in(e: &EventFields, scratch: &mut Vec<u8>) -> Hash {
    scratch.clear();
    scratch.push(LEAF_PREFIX);
    encode_into(e, scratch);
    Sha256::digest(&scratch[..]).into()
}

pub fn leaf_hash_hex(e: &EventFields) -> String {
    to_hex(&leaf_hash(e))
}

/// RFC 9162 interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// MTH of the empty tree: SHA-256 of the empty string.
fn empty_tree_head() -> Hash {
    Sha256::digest([]).into()
}

/// The perfect subtrees covering the leaves appended so far (a "compact
/// range"), left to right with strictly decreasing heights. Gives the RFC 9162
/// head in O(log n) memory and lets the chain verifier update incrementally.
#[derive(Debug, Clone, Default)]
struct Frontier {
    nodes: Vec<(Hash, u32)>,
}

impl Frontier {
    fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut height = 0;
        // Merge equal-height neighbours, like carrying in binary addition.
        while let Some(&(left, h)) = self.nodes.last() {
            if h != height {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&left, &hash);
            height += 1;
        }
        self.nodes.push((hash, height));
    }

    /// Folding right to left reproduces RFC 9162's split at the largest power
    /// of two below n: the leftmost subtree is exactly that power of two.
    fn root(&self) -> Hash {
        let mut rest = self.nodes.iter().rev();
        match rest.next() {
            None => empty_tree_head(),
            Some(&(last, _)) => rest.fold(last, |acc, (left, _)| node_hash(left, &acc)),
        }
    }
}

/// RFC 9162 §2.1.1 Merkle Tree Hash over leaf hashes.
pub fn tree_head(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::default();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

/// Largest power of two strictly less than `n` (requires n >= 2).
fn split_point(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.1 inclusion path for `leaves[index]`, leaf-side first.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    // Walk down from the root, collecting the sibling subtree at each split;
    // the RFC lists them bottom-up, hence the final reverse.
    let (mut lo, mut hi, mut m) = (0, leaves.len(), index);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if m < k {
            path.push(tree_head(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            path.push(tree_head(&leaves[lo..lo + k]));
            lo += k;
            m -= k;
        }
    }
    path.reverse();
    Some(path)
}

/// RFC 9162 §2.1.3.2 inclusion proof verification.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            // Path longer than the tree is tall.
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                // Right edge of a ragged tree: skip levels with no sibling.
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// RFC 9162 §2.1.4.1 consistency proof that the first `from` leaves are a
/// prefix of `leaves`.
pub fn consistency_proof(leaves: &[Hash], from: usize) -> Option<Vec<Hash>> {
    if from == 0 || from > leaves.len() {
        return None;
    }
    // SUBPROOF(m, D[lo..hi], b), unrolled: each level appends one hash after
    // the recursive part, so collect top-down and reverse.
    let (mut lo, mut hi, mut m) = (0, leaves.len(), from);
    let mut whole_old_tree = true;
    let mut tail = Vec::new();
    let mut head = None;
    loop {
        let n = hi - lo;
        if m == n {
            // The old tree's own root is only needed when it is a proper
            // subtree the verifier cannot derive from `from_root` alone.
            if !whole_old_tree {
                head = Some(tree_head(&leaves[lo..hi]));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            tail.push(tree_head(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            tail.push(tree_head(&leaves[lo..lo + k]));
            lo += k;
            m -= k;
            whole_old_tree = false;
        }
    }
    tail.reverse();
    Some(head.into_iter().chain(tail).collect())
}

/// RFC 9162 §2.1.4.2 consistency proof verification. `from == to` holds iff
/// the roots match and the path is empty; `from == 0` is rejected (no proof
/// is ever issued for it), as is `from > to`.
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    path: &[Hash],
) -> bool {
    if from == 0 || from > to {
        return false;
    }
    if from == to {
        return path.is_empty() && from_root == to_root;
    }
    let (seed, rest) = if from.is_power_of_two() {
        // The old tree is a complete left subtree; its root starts the walk.
        (*from_root, path)
    } else {
        match path.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return false,
        }
    };
    let (mut f_n, mut s_n) = (from - 1, to - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && fr == *from_root && sr == *to_root
}

/// Lowercase hex, the only form stored and compared.
pub fn to_hex(h: &Hash) -> String {
    hex::encode(h)
}

/// Parses exactly 64 hex digits (either case); anything else is `None`.
pub fn from_hex(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// An audit event as read back from storage, hash included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub work_order: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEvent {
    /// The hashed fields, borrowed.
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            seq: self.seq,
            at: &self.at,
            actor: &self.actor,
            role: &self.role,
            action: &self.action,
            work_order: self.work_order.as_deref(),
            detail: &self.detail,
            prev_hash: &self.prev_hash,
        }
    }
}

/// Verifies a chain read in seq order; pure so the CLI can run it offline.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    leaves: Vec<Hash>,
    frontier: Frontier,
    prev_hash: String,
    first_bad: Option<i64>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self {
            leaves: Vec::new(),
            frontier: Frontier::default(),
            prev_hash: GENESIS_PREV_HASH.to_owned(),
            first_bad: None,
        }
    }

    /// Feed the next event. Returns false (and stays failed) at the first
    /// event whose seq is not the expected next one (1, 2, 3… without gaps),
    /// whose prev_hash is not the previous event's hash, or whose recomputed
    /// hash differs from `hash`.
    pub fn push(&mut self, e: &StoredEvent) -> bool {
        if self.first_bad.is_some() {
            // Nothing after a break can be trusted to extend the intact prefix.
            return false;
        }
        let expected_seq = i64::try_from(self.leaves.len())
            .ok()
            .and_then(|n| n.checked_add(1));
        let computed = leaf_hash(&e.fields());
        // Exact string comparison: stored hashes must be canonical lowercase.
        let intact = expected_seq == Some(e.seq)
            && e.prev_hash == self.prev_hash
            && e.hash == to_hex(&computed);
        if !intact {
            self.first_bad = Some(e.seq);
            return false;
        }
        self.leaves.push(computed);
        self.frontier.push(computed);
        self.prev_hash.clone_from(&e.hash);
        true
    }

    /// Intact events before the first bad one.
    pub fn checked(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The seq of the first bad event as fed (for a gap, the seq found, not
    /// the one expected).
    pub fn first_bad_seq(&self) -> Option<i64> {
        self.first_bad
    }

    /// Leaf hashes of the intact prefix (index = seq − 1).
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }

    /// Tree head of the intact prefix, kept incrementally (O(log n)).
    pub fn head(&self) -> Hash {
        self.frontier.root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sha(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    fn n(l: &Hash, r: &Hash) -> Hash {
        sha(&[&[1], l, r])
    }

    fn h(s: &str) -> Hash {
        from_hex(s).unwrap()
    }

    /// Distinct, arbitrary leaf hashes.
    fn leaves(count: usize) -> Vec<Hash> {
        (0..count as u32)
            .map(|i| sha(&[&[0], &i.to_be_bytes()]))
            .collect()
    }

    /// RFC 9162 §2.1.1 written literally, as an independent reference.
    fn mth_ref(d: &[Hash]) -> Hash {
        match d.len() {
            0 => sha(&[]),
            1 => d[0],
            len => {
                let mut k = 1;
                while k * 2 < len {
                    k *= 2;
                }
                n(&mth_ref(&d[..k]), &mth_ref(&d[k..]))
            }
        }
    }

    /// RFC 9162 §2.1.3.1 PATH, literally recursive.
    fn path_ref(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() <= 1 {
            return vec![];
        }
        let k = split_point(d.len());
        if m < k {
            let mut p = path_ref(m, &d[..k]);
            p.push(mth_ref(&d[k..]));
            p
        } else {
            let mut p = path_ref(m - k, &d[k..]);
            p.push(mth_ref(&d[..k]));
            p
        }
    }

    /// RFC 9162 §2.1.4.1 SUBPROOF, literally recursive.
    fn subproof_ref(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        if m == d.len() {
            return if b { vec![] } else { vec![mth_ref(d)] };
        }
        let k = split_point(d.len());
        if m <= k {
            let mut p = subproof_ref(m, &d[..k], b);
            p.push(mth_ref(&d[k..]));
            p
        } else {
            let mut p = subproof_ref(m - k, &d[k..], false);
            p.push(mth_ref(&d[..k]));
            p
        }
    }

    #[test]
    fn tree_head_known_answers_by_definition() {
        let d = leaves(7);
        assert_eq!(
            tree_head(&[]),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(tree_head(&d[..1]), d[0]);
        assert_eq!(tree_head(&d[..2]), n(&d[0], &d[1]));
        assert_eq!(tree_head(&d[..3]), n(&n(&d[0], &d[1]), &d[2]));
        let left = n(&n(&d[0], &d[1]), &n(&d[2], &d[3]));
        let right = n(&n(&d[4], &d[5]), &d[6]);
        assert_eq!(tree_head(&d[..7]), n(&left, &right));
    }

    // Certificate Transparency's published RFC 6962 vectors (same hashing as
    // RFC 9162): leaf inputs and tree heads for sizes 1..=8.
    const CT_INPUTS: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn ct_leaves() -> Vec<Hash> {
        CT_INPUTS
            .iter()
            .map(|s| sha(&[&[0], &hex::decode(s).unwrap()]))
            .collect()
    }

    #[test]
    fn matches_published_rfc6962_vectors() {
        let d = ct_leaves();
        for size in 1..=8 {
            assert_eq!(tree_head(&d[..size]), h(CT_ROOTS[size - 1]), "size {size}");
        }
        let hs = |v: &[&str]| v.iter().map(|s| h(s)).collect::<Vec<_>>();
        let incl = [
            (
                0,
                hs(&[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ]),
            ),
            (
                5,
                hs(&[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ]),
            ),
        ];
        let root8 = h(CT_ROOTS[7]);
        for (index, want) in incl {
            assert_eq!(inclusion_proof(&d, index).unwrap(), want);
            assert!(verify_inclusion(&d[index], index as u64, 8, &want, &root8));
        }
        let cons = [
            (
                2,
                hs(&[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ]),
            ),
            (
                6,
                hs(&[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ]),
            ),
        ];
        for (from, want) in cons {
            assert_eq!(consistency_proof(&d, from).unwrap(), want);
            let from_root = h(CT_ROOTS[from - 1]);
            assert!(verify_consistency(
                from as u64,
                8,
                &from_root,
                &root8,
                &want
            ));
        }
    }

    #[test]
    fn tree_head_matches_recursive_definition() {
        let d = leaves(200);
        for size in 0..=d.len() {
            assert_eq!(tree_head(&d[..size]), mth_ref(&d[..size]), "size {size}");
        }
    }

    #[test]
    fn tree_head_handles_a_million_leaves() {
        // Cheap distinct leaves: hashing them first would only slow the test.
        let d: Vec<Hash> = (0..1_000_000u32)
            .map(|i| {
                let mut leaf = [0u8; 32];
                leaf[..4].copy_from_slice(&i.to_be_bytes());
                leaf
            })
            .collect();
        // Independent level-by-level reduction (odd node promoted, not
        // duplicated) as the reference at this size.
        let mut level = d.clone();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| if c.len() == 2 { n(&c[0], &c[1]) } else { c[0] })
                .collect();
        }
        assert_eq!(tree_head(&d), level[0]);
    }

    #[test]
    fn inclusion_round_trips_up_to_20() {
        let d = leaves(20);
        for size in 1..=20 {
            let t = &d[..size];
            let root = tree_head(t);
            for i in 0..size {
                let p = inclusion_proof(t, i).unwrap();
                assert_eq!(p, path_ref(i, t), "{i}/{size}");
                assert!(verify_inclusion(&t[i], i as u64, size as u64, &p, &root));
            }
            assert_eq!(inclusion_proof(t, size), None);
        }
        assert_eq!(inclusion_proof(&[], 0), None);
    }

    #[test]
    fn consistency_round_trips_up_to_20() {
        let d = leaves(20);
        for size in 1..=20 {
            let t = &d[..size];
            let root = tree_head(t);
            for from in 1..=size {
                let p = consistency_proof(t, from).unwrap();
                assert_eq!(p, subproof_ref(from, t, true), "{from}/{size}");
                let old = tree_head(&t[..from]);
                assert!(
                    verify_consistency(from as u64, size as u64, &old, &root, &p),
                    "{from}/{size}"
                );
            }
            assert_eq!(consistency_proof(t, 0), None);
            assert_eq!(consistency_proof(t, size + 1), None);
            assert_eq!(consistency_proof(t, size), Some(vec![]));
        }
    }

    #[test]
    fn tampered_inclusion_proofs_rejected() {
        let d = leaves(20);
        let junk = [0xab; 32];
        for size in 1..=20u64 {
            let t = &d[..size as usize];
            let root = tree_head(t);
            for i in 0..size {
                let leaf = &t[i as usize];
                let p = inclusion_proof(t, i as usize).unwrap();
                for j in 0..p.len() {
                    let mut bad = p.clone();
                    bad[j][7] ^= 1;
                    assert!(!verify_inclusion(leaf, i, size, &bad, &root));
                }
                if !p.is_empty() {
                    assert!(!verify_inclusion(leaf, i, size, &p[..p.len() - 1], &root));
                    let other = (i + 1) % size;
                    assert!(!verify_inclusion(leaf, other, size, &p, &root));
                    assert!(!verify_inclusion(&t[other as usize], i, size, &p, &root));
                }
                let mut longer = p.clone();
                longer.push(junk);
                assert!(!verify_inclusion(leaf, i, size, &longer, &root));
                assert!(!verify_inclusion(leaf, i, size, &p, &junk));
                // (A path may also fit a larger size with the same shape; the
                // size is bound by the signed checkpoint, not the path.)
                assert!(!verify_inclusion(leaf, size, size, &p, &root));
            }
        }
    }

    #[test]
    fn tampered_consistency_proofs_rejected() {
        let d = leaves(20);
        let junk = [0xcd; 32];
        for size in 2..=20u64 {
            let t = &d[..size as usize];
            let root = tree_head(t);
            for from in 1..size {
                let old = tree_head(&t[..from as usize]);
                let p = consistency_proof(t, from as usize).unwrap();
                assert!(!p.is_empty());
                for j in 0..p.len() {
                    let mut bad = p.clone();
                    bad[j][3] ^= 0x80;
                    assert!(!verify_consistency(from, size, &old, &root, &bad));
                }
                assert!(!verify_consistency(
                    from,
                    size,
                    &old,
                    &root,
                    &p[..p.len() - 1]
                ));
                let mut longer = p.clone();
                longer.push(junk);
                assert!(!verify_consistency(from, size, &old, &root, &longer));
                assert!(!verify_consistency(from, size, &junk, &root, &p));
                assert!(!verify_consistency(from, size, &old, &junk, &p));
                assert!(!verify_consistency(size, from, &root, &old, &p));
                // A different history of the same length must not pass.
                let mut forked = t.to_vec();
                forked[0][0] ^= 1;
                let forked_old = tree_head(&forked[..from as usize]);
                assert!(!verify_consistency(from, size, &forked_old, &root, &p));
            }
        }
    }

    #[test]
    fn consistency_degenerate_cases() {
        let d = leaves(5);
        let (r4, r5) = (tree_head(&d[..4]), tree_head(&d));
        assert!(verify_consistency(4, 4, &r4, &r4, &[]));
        assert!(!verify_consistency(4, 4, &r4, &r5, &[]));
        assert!(!verify_consistency(4, 4, &r4, &r4, &[r4]));
        assert!(!verify_consistency(0, 5, &tree_head(&[]), &r5, &[]));
        assert!(!verify_consistency(3, 5, &tree_head(&d[..3]), &r5, &[]));
    }

    #[test]
    fn canonical_detail_sorts_keys_bytewise_and_drops_whitespace() {
        let v = json!({
            "b": 1,
            "a": {"d": [3, {"z": null, "y": true}], "c": "x\"\n\u{1}é"},
            "é": 1.5,
            "Z": -2,
            "\u{10000}": 0,
            "\u{ff61}": 0
        });
        // U+FF61 precedes U+10000 in UTF-8 byte order (UTF-16 would flip it).
        assert_eq!(
            canonical_detail(&v),
            "{\"Z\":-2,\"a\":{\"c\":\"x\\\"\\n\\u0001é\",\"d\":[3,{\"y\":true,\"z\":null}]},\
             \"b\":1,\"é\":1.5,\"\u{ff61}\":0,\"\u{10000}\":0}"
        );
        assert_eq!(canonical_detail(&json!({})), "{}");
        assert_eq!(canonical_detail(&json!([])), "[]");
        assert_eq!(canonical_detail(&json!("s")), "\"s\"");
    }

    fn sample() -> StoredEvent {
        StoredEvent {
            seq: 1,
            at: "2025-01-02T03:04:05.678Z".into(),
            actor: "clerk\"7\"\n".into(),
            role: "clerk".into(),
            action: "work_order.create".into(),
            work_order: None,
            detail: "{\"a\":1}".into(),
            prev_hash: GENESIS_PREV_HASH.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn canonical_encoding_is_exact() {
        let mut e = sample();
        assert_eq!(
            String::from_utf8(canonical_encoding(&e.fields())).unwrap(),
            format!(
                "{{\"seq\":1,\"at\":\"2025-01-02T03:04:05.678Z\",\"actor\":\"clerk\\\"7\\\"\\n\",\
                 \"role\":\"clerk\",\"action\":\"work_order.create\",\"work_order\":null,\
                 \"detail\":{{\"a\":1}},\"prev_hash\":\"{GENESIS_PREV_HASH}\"}}"
            )
        );
        e.work_order = Some("WO-1".into());
        e.seq = -3;
        let text = String::from_utf8(canonical_encoding(&e.fields())).unwrap();
        assert!(text.starts_with("{\"seq\":-3,"));
        assert!(text.contains(",\"work_order\":\"WO-1\",\"detail\":{\"a\":1},"));
        // Strings are escaped exactly as serde_json escapes them.
        let tricky = "\u{0}\u{8}\t\u{1f}\u{7f}/\\\"é😀\u{2028}";
        e.actor = tricky.into();
        let text = String::from_utf8(canonical_encoding(&e.fields())).unwrap();
        let want = format!(",\"actor\":{},", serde_json::to_string(tricky).unwrap());
        assert!(text.contains(&want));
        // The encoding is valid JSON with the fields in the stated order.
        let parsed: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["actor"], tricky);
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        every_ascii.push_str("é😀\u{2028}\u{ffff}");
        let singles: Vec<String> = (0u32..0x800)
            .filter_map(char::from_u32)
            .map(String::from)
            .collect();
        let tricky = ["", "plain", "\"\\", "a\u{0}b\u{1f}c\u{7f}", &every_ascii];
        for s in tricky.into_iter().chain(singles.iter().map(String::as_str)) {
            let mut out = Vec::new();
            push_json_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
        for n in [0, 7, -1, 10, 1_000_000, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_i64(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    #[test]
    fn leaf_hash_is_prefixed_sha256() {
        let e = sample();
        let enc = canonical_encoding(&e.fields());
        assert_eq!(leaf_hash(&e.fields()), sha(&[&[0], &enc]));
        assert_eq!(leaf_hash_hex(&e.fields()), to_hex(&leaf_hash(&e.fields())));
        let (l, r) = ([1u8; 32], [2u8; 32]);
        assert_eq!(node_hash(&l, &r), n(&l, &r));
        assert_ne!(node_hash(&l, &r), node_hash(&r, &l));
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let x = sha(&[b"x"]);
        let s = to_hex(&x);
        assert_eq!(s.len(), 64);
        assert_eq!(s, s.to_lowercase());
        assert_eq!(from_hex(&s), Some(x));
        assert_eq!(from_hex(&s.to_uppercase()), Some(x));
        assert_eq!(from_hex(&s[..62]), None);
        assert_eq!(from_hex(&format!("{s}00")), None);
        assert_eq!(from_hex(&format!("{}zz", &s[..62])), None);
        assert_eq!(from_hex(""), None);
        assert_eq!(from_hex(GENESIS_PREV_HASH), Some([0; 32]));
    }

    /// A well-formed chain of `count` events.
    fn chain(count: i64) -> Vec<StoredEvent> {
        let mut prev = GENESIS_PREV_HASH.to_owned();
        (1..=count)
            .map(|seq| {
                let mut e = StoredEvent {
                    seq,
                    at: format!("2025-01-01T00:00:{:02}Z", seq % 60),
                    actor: format!("user-{}", seq % 3),
                    role: "clerk".into(),
                    action: "work_order.update".into(),
                    work_order: (seq % 2 == 0).then(|| format!("WO-{seq}")),
                    detail: canonical_detail(&json!({"step": seq, "note": "ok"})),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = leaf_hash_hex(&e.fields());
                prev.clone_from(&e.hash);
                e
            })
            .collect()
    }

    fn run(events: &[StoredEvent]) -> ChainVerifier {
        let mut v = ChainVerifier::new();
        for e in events {
            v.push(e);
        }
        v
    }

    /// Re-hash an event after editing it, as a forger would.
    fn rehash(e: &mut StoredEvent) {
        e.hash = leaf_hash_hex(&e.fields());
    }

    #[test]
    fn verifier_accepts_intact_chain() {
        let events = chain(37);
        let mut v = ChainVerifier::default();
        assert_eq!(v.head(), tree_head(&[]));
        for e in &events {
            assert!(v.push(e));
            assert_eq!(v.head(), tree_head(v.leaves()));
        }
        assert_eq!(v.checked(), 37);
        assert_eq!(v.first_bad_seq(), None);
        let want: Vec<Hash> = events.iter().map(|e| h(&e.hash)).collect();
        assert_eq!(v.leaves(), &want[..]);
    }

    #[test]
    fn verifier_catches_altered_detail() {
        let mut events = chain(10);
        events[4].detail = canonical_detail(&json!({"step": 5, "note": "edited"}));
        let v = run(&events);
        assert_eq!((v.checked(), v.first_bad_seq()), (4, Some(5)));
        assert_eq!(v.head(), tree_head(&v.leaves()[..4]));
    }

    #[test]
    fn verifier_catches_altered_prev_hash() {
        let mut events = chain(10);
        events[6].prev_hash = events[4].hash.clone();
        let v = run(&events);
        assert_eq!((v.checked(), v.first_bad_seq()), (6, Some(7)));
        // Even with its own hash recomputed, the link is still broken.
        rehash(&mut events[6]);
        let v = run(&events);
        assert_eq!((v.checked(), v.first_bad_seq()), (6, Some(7)));
    }

    #[test]
    fn verifier_catches_gap_in_seq() {
        let mut events = chain(10);
        events.remove(3);
        let v = run(&events);
        assert_eq!((v.checked(), v.first_bad_seq()), (3, Some(5)));
        // A chain that does not start at 1 fails at once.
        let v = run(&chain(3)[1..]);
        assert_eq!((v.checked(), v.first_bad_seq()), (0, Some(2)));
        // A repeated seq is as bad as a skipped one.
        let events = chain(3);
        let v = run(&[events[0].clone(), events[0].clone()]);
        assert_eq!((v.checked(), v.first_bad_seq()), (1, Some(1)));
    }

    #[test]
    fn verifier_catches_recomputed_but_unlinked_hash() {
        // Edit an event and recompute its hash: it is self-consistent, but the
        // next event still points at the original, so the break shows there.
        let mut events = chain(10);
        events[2].detail = canonical_detail(&json!({"step": 3, "note": "forged"}));
        rehash(&mut events[2]);
        let v = run(&events);
        assert_eq!((v.checked(), v.first_bad_seq()), (3, Some(4)));

        // Delete an event and renumber/rehash the rest without relinking.
        let mut events = chain(10);
        events.remove(5);
        for e in &mut events[5..] {
            e.seq -= 1;
            rehash(e);
        }
        let v = run(&events);
        assert_eq!((v.checked(), v.first_bad_seq()), (5, Some(6)));
    }

    #[test]
    fn verifier_checks_genesis_and_hash_form_and_stays_failed() {
        let mut events = chain(4);
        events[0].prev_hash = "1".repeat(64);
        rehash(&mut events[0]);
        let v = run(&events);
        assert_eq!((v.checked(), v.first_bad_seq()), (0, Some(1)));

        let mut events = chain(4);
        events[1].hash = events[1].hash.to_uppercase();
        let mut v = ChainVerifier::new();
        assert!(v.push(&events[0]));
        assert!(!v.push(&events[1]));
        // Later events, even correct ones, do not resume the intact prefix.
        let fresh = chain(4);
        assert!(!v.push(&fresh[1]));
        assert!(!v.push(&fresh[2]));
        assert_eq!((v.checked(), v.first_bad_seq()), (1, Some(2)));
    }

    /// The example in docs/audit.md; if this changes, so must the doc.
    #[test]
    fn worked_example_in_docs() {
        let e = StoredEvent {
            seq: 1,
            at: "2025-03-01T08:30:00Z".into(),
            actor: "u-0001".into(),
            role: "clerk".into(),
            action: "work_order.create".into(),
            work_order: Some("WO-2025-0001".into()),
            detail: canonical_detail(&json!({"province": "GD", "note": "first \"draft\""})),
            prev_hash: GENESIS_PREV_HASH.into(),
            hash: String::new(),
        };
        assert_eq!(
            String::from_utf8(canonical_encoding(&e.fields())).unwrap(),
            "{\"seq\":1,\"at\":\"2025-03-01T08:30:00Z\",\"actor\":\"u-0001\",\"role\":\"clerk\",\
             \"action\":\"work_order.create\",\"work_order\":\"WO-2025-0001\",\
             \"detail\":{\"note\":\"first \\\"draft\\\"\",\"province\":\"GD\"},\
             \"prev_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"}"
        );
        let hash = "6e07d1a744225f3ab71364c06a2173f04acd7198fe52f8bb883edfea5b7d7c6d";
        assert_eq!(leaf_hash_hex(&e.fields()), hash);
        assert_eq!(canonical_encoding(&e.fields()).len(), 257);
        // A one-event log's head is that event's hash.
        assert_eq!(to_hex(&tree_head(&[h(hash)])), hash);
    }
}
