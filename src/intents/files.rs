//! On-disk helpers for the intent store: compact embeddings (little-endian f32 in base64) and
//! the clock. Atomic writes are `crate::fsutil::write_atomic`.

use anyhow::{bail, Result};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A vector as base64 of its little-endian f32 bytes.
pub fn encode_vec(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The inverse of `encode_vec`.
pub fn decode_vec(s: &str) -> Result<Vec<f32>> {
    let s = s.trim_end_matches('=');
    let mut bytes = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in s.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == ch) else {
            bail!("invalid base64 character {:?}", ch as char);
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bytes.len() % 4 != 0 {
        bail!("embedding bytes are not a whole number of f32");
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip() {
        for n in 0..7 {
            let v: Vec<f32> = (0..n).map(|i| i as f32 * -0.37 + 1e-7).collect();
            assert_eq!(decode_vec(&encode_vec(&v)).unwrap(), v);
        }
        assert_eq!(encode_vec(&[1.0]), "AACAPw==");
        assert!(decode_vec("AA*A").is_err());
        assert!(decode_vec("AAAA").is_err());
    }
}
