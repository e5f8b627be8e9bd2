//! Deterministic document payloads of an exact size.
//!
//! Benchmarks that compress must see data shaped like the real thing: random bytes would not
//! compress at all and a repeated constant would compress absurdly well. So payloads are small
//! JSON documents (tenant, names, e-mail, tags, numbers, timestamps, free text drawn from a
//! fixed vocabulary) produced by a seeded PRNG, padded with free text to exactly the requested
//! length. The same seed always yields the same bytes, so runs are comparable.

use std::fmt::Write as _;

/// SplitMix64: tiny, fast, and good enough for generating test data (not for anything else).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant for test data.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Free-text vocabulary, space-separated.
const WORDS: &str =
    "order invoice customer payment shipping address account product service update request \
     pending review approved rejected delivery warehouse inventory stock price discount total \
     tax refund return priority ticket support escalation resolved issue feature release \
     region cluster replica backup restore snapshot latency throughput error warning metric \
     alert report budget forecast revenue contract renewal subscription plan tier premium \
     trial migration webhook token session notification message team project milestone sprint \
     task comment document folder permission owner the of and to in is for on with by from at \
     was not";
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "te", "shi", "no", "va", "zu", "be", "dor", "fen", "gal", "hon", "jas",
    "kel", "mor", "pan", "sil", "tor", "wen", "yar",
];
const TENANTS: &[&str] = &[
    "acme", "acme", "acme", "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne",
];
const TAGS: &[&str] = &[
    "urgent", "vip", "eu", "us", "apac", "beta", "legacy", "gdpr", "billing", "renewal", "trial",
    "mobile", "web", "api", "partner", "internal", "q1", "q2", "q3", "q4",
];
const STATUSES: &[&str] = &[
    "active",
    "active",
    "active",
    "pending",
    "suspended",
    "draft",
];
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-south-1",
];

/// Generates payloads; one generator yields a deterministic sequence of distinct documents.
#[derive(Debug, Clone)]
pub struct PayloadGen {
    rng: SplitMix64,
    next_id: u64,
    words: Vec<&'static str>,
}

impl PayloadGen {
    pub fn new(seed: u64) -> Self {
        PayloadGen {
            rng: SplitMix64::new(seed),
            next_id: 1,
            words: WORDS.split_whitespace().collect(),
        }
    }

    fn name(&mut self) -> String {
        let mut s = String::new();
        for i in 0..2 + self.rng.below(2) {
            let syl = *self.rng.pick(SYLLABLES);
            if i == 0 {
                let mut c = syl.chars();
                if let Some(f) = c.next() {
                    s.extend(f.to_uppercase());
                    s.push_str(c.as_str());
                }
            } else {
                s.push_str(syl);
            }
        }
        s
    }

    /// A 36-character UUID-shaped hex id.
    pub fn uuid(&mut self) -> String {
        let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xffff,
            b & 0xffff_ffff_ffff
        )
    }

    /// The next document, exactly `len` bytes of ASCII. For `len` of about 400 or more it is a
    /// valid JSON object; shorter payloads are plain text of the same vocabulary.
    pub fn next_payload(&mut self, len: usize) -> Vec<u8> {
        let id = self.next_id;
        self.next_id += 1;
        let mut s = String::with_capacity(len + 64);
        let first = (self.name(), self.name());
        let r = &mut self.rng;
        let tenant = *r.pick(TENANTS);
        let _ = write!(
            s,
            "{{\"id\":{id},\"tenant\":\"{tenant}\",\"name\":\"{} {}\",\"email\":\"{}.{}{}@example.com\",\
             \"status\":\"{}\",\"version\":{},\"tags\":[",
            first.0,
            first.1,
            first.0.to_lowercase(),
            first.1.to_lowercase(),
            r.below(99) + 1,
            r.pick(STATUSES),
            r.below(40) + 1,
        );
        for i in 0..r.below(5) {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "\"{}\"", r.pick(TAGS));
        }
        let secs = 1_704_067_200 + r.below(80_000_000);
        let _ = write!(
            s,
            "],\"score\":{}.{:03},\"balance_cents\":{},\"attributes\":{{\"region\":\"{}\",\
             \"seats\":{},\"verified\":{}}},\"updated_at\":{secs},\"description\":\"",
            r.below(100),
            r.below(1000),
            r.below(5_000_000),
            r.pick(REGIONS),
            r.below(500) + 1,
            r.below(10) < 7,
        );
        const CLOSE: &str = "\"}";
        if s.len() + CLOSE.len() > len {
            // Too short for a document: plain text of the same vocabulary.
            s.clear();
            self.fill_words(&mut s, len);
            return s.into_bytes();
        }
        self.fill_words(&mut s, len - CLOSE.len());
        s.push_str(CLOSE);
        debug_assert_eq!(s.len(), len);
        s.into_bytes()
    }

    /// Appends space-separated words until `s` is exactly `target` bytes long.
    fn fill_words(&mut self, s: &mut String, target: usize) {
        let mut first = true;
        while s.len() < target {
            let room = target - s.len();
            let word = *self.rng.pick(&self.words);
            let sep = usize::from(!first);
            if word.len() + sep <= room {
                if !first {
                    s.push(' ');
                }
                s.push_str(word);
            } else {
                // Fill the last few bytes with a cut word so the length is exact.
                s.push_str(&"xxxxxxxxxxxxxxxx"[..room.min(16)]);
                while s.len() < target {
                    s.push('x');
                }
            }
            first = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_exact_length_and_are_deterministic() {
        let mut a = PayloadGen::new(7);
        let mut b = PayloadGen::new(7);
        for len in [0, 1, 10, 100, 399, 512, 1024, 4096] {
            let (pa, pb) = (a.next_payload(len), b.next_payload(len));
            assert_eq!(pa.len(), len, "len {len}");
            assert_eq!(pa, pb);
        }
    }

    #[test]
    fn one_kib_payload_is_json_and_distinct() {
        let mut g = PayloadGen::new(1);
        let p1 = g.next_payload(1024);
        let p2 = g.next_payload(1024);
        assert_ne!(p1, p2);
        let v: serde_json::Value = serde_json::from_slice(&p1).expect("valid JSON");
        assert_eq!(v["id"], 1);
    }

    #[test]
    fn one_kib_payloads_compress_like_documents() {
        // Real documents compress about 4x with zstd 3; random bytes would not compress and a
        // constant would compress 100x. Either would make the compression figures meaningless.
        let mut g = PayloadGen::new(3);
        let raw: Vec<u8> = (0..64).flat_map(|_| g.next_payload(1024)).collect();
        let z = zstd::bulk::compress(&raw, 3).expect("compress");
        let ratio = raw.len() as f64 / z.len() as f64;
        assert!((2.0..8.0).contains(&ratio), "ratio {ratio}");
    }
}
