//! A check run over a pickle before candle's restricted reader (`candle_core::pickle`) sees it.
//!
//! candle's reader runs no code, but it silently skips classes it does not know, panics on some
//! malformed input (an integer wider than 8 bytes), allocates whatever a string length claims,
//! and copies memoised objects, so a small hostile file could nest objects until the stack
//! overflows or copy them until memory runs out. This pass walks the opcodes without building
//! anything: every `GLOBAL` must be one of the classes `torch.save` writes for a state dict,
//! every length must fit the bytes left, and the objects the reader would build are bounded in
//! nesting depth and in count (memo copies included). Only then is the pickle handed to candle.

use anyhow::{bail, Result};
use std::collections::HashMap;

/// The classes a `torch.save(model.state_dict())` pickle names; nothing else may be asked for.
pub const ALLOWED_CLASSES: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "DoubleStorage"),
    ("torch", "LongStorage"),
    ("torch", "ByteStorage"),
];

/// Deepest nesting of built objects (a state dict needs about 8).
const MAX_DEPTH: u32 = 100;
/// Most objects one value may hold (a state dict needs about 20 per tensor).
const MAX_NODES: u64 = 8 << 20;
/// Most objects copied by memo gets and puts together.
const MAX_COPIED: u64 = 64 << 20;
/// Longest module or class name line.
const MAX_NAME: usize = 256;

/// What the reader would build for one stack entry, in size only.
#[derive(Clone, Copy)]
struct Item {
    depth: u32,
    nodes: u64,
    mark: bool,
}

const LEAF: Item = Item {
    depth: 1,
    nodes: 1,
    mark: false,
};

struct Walk<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u32, Item>,
    copied: u64,
}

/// Check the pickle at the start of `data`; returns its length (up to and including `STOP`).
pub fn check(data: &[u8]) -> Result<usize> {
    let mut w = Walk {
        data,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
        copied: 0,
    };
    loop {
        let at = w.pos;
        let op = w.byte()?;
        match op {
            0x80 => w.skip(1)?, // PROTO
            b'c' => {
                let module = w.line()?;
                let class = w.line()?;
                if !ALLOWED_CLASSES.contains(&(module.as_str(), class.as_str())) {
                    bail!(
                        "the pickle asks for `{module}.{class}` (byte {at}), which is not one of \
                         the tensor classes a state dict uses; refusing to load it"
                    );
                }
                w.push(LEAF)?;
            }
            b'K' => w.leaf(1)?,
            b'M' => w.leaf(2)?,
            b'J' => w.leaf(4)?,
            b'G' => w.leaf(8)?,
            0x8a => {
                let n = w.byte()?;
                if n > 8 {
                    bail!("an integer of {n} bytes at byte {at} (at most 8 are read)");
                }
                w.leaf(usize::from(n))?;
            }
            b'X' => {
                let n = u32::from_le_bytes(w.array()?) as usize;
                let s = w.take(n)?;
                if std::str::from_utf8(s).is_err() {
                    bail!("a string that is not UTF-8 at byte {at}");
                }
                w.push(LEAF)?;
            }
            // NONE, NEWTRUE, NEWFALSE, EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT; candle reads DICT
            // ('d') as an empty dict too.
            b'N' | 0x88 | 0x89 | b')' | b']' | b'}' | b'd' => w.push(LEAF)?,
            b'(' => w.stack.push(Item {
                depth: 0,
                nodes: 1,
                mark: true,
            }),
            b't' => {
                let items = w.pop_mark(at)?;
                w.push(node(&items))?;
            }
            0x85..=0x87 => {
                let items = w.pop_n(usize::from(op - 0x84), at)?;
                w.push(node(&items))?;
            }
            // REDUCE, NEWOBJ, BUILD: two objects into one.
            b'R' | 0x81 | b'b' => {
                let items = w.pop_n(2, at)?;
                w.push(node(&items))?;
            }
            b'Q' => {
                let items = w.pop_n(1, at)?;
                w.push(node(&items))?;
            }
            b'a' => {
                let items = w.pop_n(1, at)?;
                w.merge(&items, at)?;
            }
            b's' => {
                let items = w.pop_n(2, at)?;
                w.merge(&items, at)?;
            }
            b'e' | b'u' => {
                let items = w.pop_mark(at)?;
                w.merge(&items, at)?;
            }
            b'h' => {
                let id = u32::from(w.byte()?);
                w.get(id, at)?;
            }
            b'j' => {
                let id = u32::from_le_bytes(w.array()?);
                w.get(id, at)?;
            }
            b'q' => {
                let id = u32::from(w.byte()?);
                w.put(id, at)?;
            }
            b'r' => {
                let id = u32::from_le_bytes(w.array()?);
                w.put(id, at)?;
            }
            b'.' => return Ok(w.pos),
            other => bail!(
                "pickle opcode 0x{other:02x} at byte {at} is not one torch.save writes for tensors"
            ),
        }
    }
}

fn node(items: &[Item]) -> Item {
    Item {
        depth: items.iter().map(|i| i.depth).max().unwrap_or(0) + 1,
        nodes: items.iter().map(|i| i.nodes).sum::<u64>() + 1,
        mark: false,
    }
}

impl Walk<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            bail!("the pickle ends early (byte {} wants {n} more)", self.pos)
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    fn leaf(&mut self, arg_bytes: usize) -> Result<()> {
        self.skip(arg_bytes)?;
        self.push(LEAF)
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().take(MAX_NAME + 1).position(|&b| b == b'\n') else {
            bail!(
                "a class name at byte {} is unterminated or too long",
                self.pos
            )
        };
        let s = std::str::from_utf8(&rest[..n])
            .map_err(|_| anyhow::anyhow!("a class name at byte {} is not UTF-8", self.pos))?
            .to_string();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, item: Item) -> Result<()> {
        if item.depth > MAX_DEPTH {
            bail!("the pickle nests objects more than {MAX_DEPTH} deep");
        }
        if item.nodes > MAX_NODES {
            bail!("the pickle builds an object of more than {MAX_NODES} parts");
        }
        self.stack.push(item);
        Ok(())
    }

    fn pop_n(&mut self, n: usize, at: usize) -> Result<Vec<Item>> {
        if self.stack.len() < n {
            bail!("malformed pickle: the stack is empty at byte {at}");
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop_mark(&mut self, at: usize) -> Result<Vec<Item>> {
        let Some(m) = self.stack.iter().rposition(|i| i.mark) else {
            bail!("malformed pickle: no mark for the opcode at byte {at}")
        };
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Items added to the list or dict on top of the stack.
    fn merge(&mut self, items: &[Item], at: usize) -> Result<()> {
        let Some(top) = self.stack.pop() else {
            bail!("malformed pickle: nothing to add to at byte {at}")
        };
        let mut all = items.to_vec();
        all.push(Item {
            depth: top.depth.saturating_sub(1),
            nodes: top.nodes.saturating_sub(1),
            mark: false,
        });
        self.push(node(&all))
    }

    fn count_copy(&mut self, n: u64) -> Result<()> {
        self.copied += n;
        if self.copied > MAX_COPIED {
            bail!("the pickle copies more than {MAX_COPIED} objects through its memo");
        }
        Ok(())
    }

    fn get(&mut self, id: u32, at: usize) -> Result<()> {
        let Some(&item) = self.memo.get(&id) else {
            bail!("malformed pickle: memo entry {id} is missing at byte {at}")
        };
        self.count_copy(item.nodes)?;
        self.push(item)
    }

    fn put(&mut self, id: u32, at: usize) -> Result<()> {
        let Some(&top) = self.stack.last() else {
            bail!("malformed pickle: nothing to memoise at byte {at}")
        };
        self.count_copy(top.nodes)?;
        self.memo.insert(id, top);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_small_state_dict_shape() {
        // {'w': 1} as protocol 2: PROTO 2, EMPTY_DICT, BINPUT 0, BINUNICODE 'w', K 1, SETITEM, STOP
        let p = b"\x80\x02}q\x00X\x01\x00\x00\x00wK\x01s.";
        assert_eq!(check(p).unwrap(), p.len());
    }

    #[test]
    fn refuses_classes_outside_the_whitelist() {
        let p = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
        let err = check(p).unwrap_err().to_string();
        assert!(err.contains("os.system"), "{err}");
    }

    #[test]
    fn refuses_bombs_and_truncation() {
        // A string claiming 4 GB.
        assert!(check(b"\x80\x02X\xff\xff\xff\xff.").is_err());
        // A 10-byte integer (candle would overflow its shift).
        assert!(check(b"\x8a\x0a0123456789.").is_err());
        // Deep nesting: 200 x TUPLE1.
        let mut deep = b"N".to_vec();
        deep.extend(std::iter::repeat_n(0x85u8, 200));
        deep.push(b'.');
        assert!(check(&deep).unwrap_err().to_string().contains("deep"));
        // Memo doubling: x = (x, x) 40 times.
        let mut bomb = b"Nq\x00".to_vec();
        for _ in 0..40 {
            bomb.extend_from_slice(b"h\x00h\x00\x86q\x00");
        }
        bomb.push(b'.');
        let err = check(&bomb).unwrap_err().to_string();
        assert!(err.contains("parts") || err.contains("memo"), "{err}");
        // No STOP.
        assert!(check(b"\x80\x02}").is_err());
        assert!(check(b"").is_err());
    }
}
