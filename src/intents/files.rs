//! On-disk helpers for the intent store: compact embeddings (little-endian f32 in base64) and
//! the clock. Atomic writes are `crate::fsutil::write_atomic`.

use anyhow::{bail, Context, Result};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Standard base64; decoding takes the padding or leaves it out and ignores stray low bits, as
/// the hand-written decoder this replaced did (files written by hand or by older versions).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A vector as base64 of its little-endian f32 bytes.
pub fn encode_vec(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    B64.encode(bytes)
}

/// The inverse of `encode_vec`.
pub fn decode_vec(s: &str) -> Result<Vec<f32>> {
    let bytes = B64.decode(s).context("invalid base64")?;
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
        // Padding may be left out.
        assert_eq!(decode_vec("AACAPw").unwrap(), vec![1.0]);
    }
}
