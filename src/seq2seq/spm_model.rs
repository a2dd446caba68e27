//! SentencePiece `.model` files read with a small hand-written protobuf reader (the pieces, their
//! scores and types, and the normalizer's `precompiled_charsmap`): shared by the source tokenizer
//! (`spm`) and the separate target vocabulary (`spm_target`).

use anyhow::{bail, Context, Result};

/// Kind of a SentencePiece piece (`ModelProto.SentencePiece.Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Clone, Debug)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// The parts of a SentencePiece `ModelProto` a tokenizer needs.
#[derive(Clone, Debug)]
pub struct SpmModel {
    pub pieces: Vec<Piece>,
    /// 1 unigram, 2 bpe, 3 word, 4 char.
    pub model_type: u64,
    pub unk_id: usize,
    pub byte_fallback: bool,
    pub treat_whitespace_as_suffix: bool,
    pub normalizer_name: String,
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

impl Default for SpmModel {
    /// No pieces, and the `ModelProto` defaults for everything else (unigram, dummy prefix,
    /// whitespace handling on).
    fn default() -> Self {
        SpmModel {
            pieces: Vec::new(),
            model_type: 1,
            unk_id: 0,
            byte_fallback: false,
            treat_whitespace_as_suffix: false,
            normalizer_name: String::new(),
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        }
    }
}

/// Minimal protobuf wire-format reader (varint, fixed32/64, length-delimited).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Value<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64,
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                bail!("truncated varint at byte {}", self.pos)
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("varint too long at byte {}", self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            bail!("field of {n} bytes at byte {} runs past the end", self.pos)
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Next `(field number, value)`, or None at the end.
    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = usize::try_from(self.varint()?)?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            w => bail!("unsupported protobuf wire type {w}"),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn as_str(b: &[u8]) -> Result<String> {
    Ok(std::str::from_utf8(b)
        .context("piece is not UTF-8")?
        .to_string())
}

fn parse_piece(b: &[u8]) -> Result<Piece> {
    let mut p = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    let mut r = Reader::new(b);
    while let Some((field, v)) = r.next_field()? {
        match (field, v) {
            (1, Value::Bytes(s)) => p.piece = as_str(s)?,
            (2, Value::Fixed32(f)) => p.score = f32::from_bits(f),
            (3, Value::Varint(t)) => {
                p.kind = match t {
                    1 => PieceType::Normal,
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    t => bail!("unknown piece type {t}"),
                }
            }
            _ => {}
        }
    }
    Ok(p)
}

/// Parse a serialized SentencePiece `ModelProto`.
pub fn parse_model(bytes: &[u8]) -> Result<SpmModel> {
    let mut m = SpmModel::default();
    let mut r = Reader::new(bytes);
    while let Some((field, v)) = r.next_field()? {
        match (field, v) {
            (1, Value::Bytes(b)) => m.pieces.push(parse_piece(b)?),
            (2, Value::Bytes(b)) => {
                let mut t = Reader::new(b);
                while let Some((f, v)) = t.next_field()? {
                    match (f, v) {
                        (3, Value::Varint(x)) => m.model_type = x,
                        (24, Value::Varint(x)) => m.treat_whitespace_as_suffix = x != 0,
                        (35, Value::Varint(x)) => m.byte_fallback = x != 0,
                        (40, Value::Varint(x)) => m.unk_id = usize::try_from(x)?,
                        _ => {}
                    }
                }
            }
            (3, Value::Bytes(b)) => {
                let mut t = Reader::new(b);
                while let Some((f, v)) = t.next_field()? {
                    match (f, v) {
                        (1, Value::Bytes(s)) => m.normalizer_name = as_str(s)?,
                        (2, Value::Bytes(s)) => m.precompiled_charsmap = s.to_vec(),
                        (3, Value::Varint(x)) => m.add_dummy_prefix = x != 0,
                        (4, Value::Varint(x)) => m.remove_extra_whitespaces = x != 0,
                        (5, Value::Varint(x)) => m.escape_whitespaces = x != 0,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if m.pieces.is_empty() {
        bail!("no pieces: not a SentencePiece model");
    }
    Ok(m)
}
