//! The llama2.c `tokenizer.bin` format and run.c's `encode`/`decode`.
//!
//! Layout: i32 `max_token_length`, then for each of the `vocab_size` tokens
//! (the count comes from the checkpoint): f32 score, i32 length, that many
//! raw bytes. Pieces are kept as C strings, exactly as run.c sees them: a piece
//! with a NUL byte is cut there (run.c's `strcmp`/`printf` stop at it too).
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

/// The BOS token id (run.c hard-codes it).
pub const BOS: u32 = 1;
/// The EOS token id.
pub const EOS: u32 = 2;

/// Why a tokenizer file or a prompt was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerError {
    /// Fewer than 4 bytes: no `max_token_length`.
    TooShort,
    /// `max_token_length` is negative or zero.
    BadMaxTokenLength(i32),
    /// The file ends inside token `token`'s record.
    Truncated { token: usize },
    /// Token `token` has a negative length.
    NegativeLength { token: usize, len: i32 },
    /// Token `token` is longer than `max_token_length` (run.c would overflow).
    PieceTooLong { token: usize, len: usize, max: usize },
    /// The file holds a different number of tokens than the checkpoint's vocabulary.
    VocabSizeMismatch { expected: usize, found: usize },
    /// The vocabulary has no `" "` piece, needed for the dummy prefix.
    NoSpaceToken,
    /// The prompt is not valid UTF-8 (byte offset of the first bad byte).
    PromptNotUtf8 { offset: usize },
    /// The prompt holds a NUL byte (run.c would silently cut the prompt there).
    PromptHasNul { offset: usize },
    /// A character needs byte-fallback piece `id`, beyond the vocabulary.
    NoBytePiece { byte: u8, id: usize, vocab_size: usize },
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("tokenizer file is shorter than 4 bytes: not a llama2.c tokenizer.bin"),
            Self::BadMaxTokenLength(v) => write!(f, "tokenizer max_token_length is {v}, must be positive: the file is corrupt"),
            Self::Truncated { token } => write!(f, "tokenizer file ends inside token {token}: the file is truncated or belongs to a larger vocabulary"),
            Self::NegativeLength { token, len } => write!(f, "tokenizer token {token} has length {len}: the file is corrupt"),
            Self::PieceTooLong { token, len, max } => write!(f, "tokenizer token {token} is {len} bytes, longer than max_token_length {max}: the file is corrupt"),
            Self::VocabSizeMismatch { expected, found } => write!(f, "tokenizer holds {found} tokens but the checkpoint's vocabulary has {expected}: use the tokenizer trained with this model (-z)"),
            Self::NoSpaceToken => f.write_str("tokenizer has no \" \" token, which encoding needs as the dummy prefix: use a llama2.c tokenizer"),
            Self::PromptNotUtf8 { offset } => write!(f, "prompt is not valid UTF-8 at byte {offset}: pass UTF-8 text"),
            Self::PromptHasNul { offset } => write!(f, "prompt holds a NUL byte at offset {offset}: remove it"),
            Self::NoBytePiece { byte, id, vocab_size } => write!(f, "byte 0x{byte:02x} needs byte-fallback token {id} but the vocabulary has only {vocab_size} tokens"),
        }
    }
}

/// A parsed tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    pieces: Vec<Vec<u8>>,
    scores: Vec<f32>,
    max_token_length: usize,
    /// Token ids sorted by piece bytes (stable: ties keep id order).
    sorted: Vec<u32>,
    space_id: u32,
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let w = bytes.get(at..at.checked_add(4)?)?;
    Some(i32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

impl Tokenizer {
    /// Parses a tokenizer for a model with `vocab_size` tokens.
    pub fn parse(bytes: &[u8], vocab_size: usize) -> Result<Self, TokenizerError> {
        let max = read_i32(bytes, 0).ok_or(TokenizerError::TooShort)?;
        if max <= 0 {
            return Err(TokenizerError::BadMaxTokenLength(max));
        }
        let max_token_length = max as usize;
        let mut pieces = Vec::with_capacity(vocab_size.min(1 << 20));
        let mut scores = Vec::with_capacity(vocab_size.min(1 << 20));
        let mut at = 4usize;
        let record = |at: usize, token: usize| -> Result<(f32, &[u8], usize), TokenizerError> {
            let score = read_i32(bytes, at).ok_or(if at == bytes.len() {
                TokenizerError::VocabSizeMismatch { expected: vocab_size, found: token }
            } else {
                TokenizerError::Truncated { token }
            })?;
            let len = read_i32(bytes, at + 4).ok_or(TokenizerError::Truncated { token })?;
            if len < 0 {
                return Err(TokenizerError::NegativeLength { token, len });
            }
            let len = len as usize;
            if len > max_token_length {
                return Err(TokenizerError::PieceTooLong { token, len, max: max_token_length });
            }
            let start = at + 8;
            let piece = bytes
                .get(start..start.checked_add(len).ok_or(TokenizerError::Truncated { token })?)
                .ok_or(TokenizerError::Truncated { token })?;
            Ok((f32::from_bits(score as u32), piece, start + len))
        };
        for token in 0..vocab_size {
            let (score, piece, next) = record(at, token)?;
            // C-string semantics: the piece ends at its first NUL.
            let end = piece.iter().position(|&b| b == 0).unwrap_or(piece.len());
            pieces.push(piece[..end].to_vec());
            scores.push(score);
            at = next;
        }
        if at != bytes.len() {
            // More records follow: count them to say how big the file's vocabulary is.
            let mut found = vocab_size;
            while at < bytes.len() {
                match record(at, found) {
                    Ok((_, _, next)) => {
                        at = next;
                        found += 1;
                    }
                    Err(_) => break,
                }
            }
            return Err(TokenizerError::VocabSizeMismatch { expected: vocab_size, found });
        }
        let mut sorted: Vec<u32> = (0..vocab_size as u32).collect();
        sorted.sort_by(|&a, &b| pieces[a as usize].cmp(&pieces[b as usize]));
        let mut t = Tokenizer { pieces, scores, max_token_length, sorted, space_id: 0 };
        t.space_id = t.lookup(b" ").ok_or(TokenizerError::NoSpaceToken)?;
        Ok(t)
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The longest piece the file declares.
    pub fn max_token_length(&self) -> usize {
        self.max_token_length
    }

    /// Token `id`'s piece (empty for an unknown id).
    pub fn piece(&self, id: u32) -> &[u8] {
        self.pieces.get(id as usize).map_or(&[], |p| p.as_slice())
    }

    /// run.c's `str_lookup`: glibc `bsearch` over the sorted vocabulary (same
    /// probe order, so duplicate pieces resolve to the same id).
    pub fn lookup(&self, s: &[u8]) -> Option<u32> {
        let (mut lo, mut hi) = (0usize, self.sorted.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let id = self.sorted[mid];
            match s.cmp(&self.pieces[id as usize]) {
                Ordering::Less => hi = mid,
                Ordering::Greater => lo = mid + 1,
                Ordering::Equal => return Some(id),
            }
        }
        None
    }

    /// Encodes raw prompt bytes: they must be UTF-8 without NUL.
    pub fn encode_bytes(&self, text: &[u8], bos: bool, eos: bool) -> Result<Vec<u32>, TokenizerError> {
        let s = core::str::from_utf8(text)
            .map_err(|e| TokenizerError::PromptNotUtf8 { offset: e.valid_up_to() })?;
        self.encode(s, bos, eos)
    }

    /// run.c's `encode`: BOS, the dummy prefix `" "` for non-empty text,
    /// codepoints (or their bytes + 3), then greedy best-score pair merges.
    pub fn encode(&self, text: &str, bos: bool, eos: bool) -> Result<Vec<u32>, TokenizerError> {
        if let Some(offset) = text.bytes().position(|b| b == 0) {
            return Err(TokenizerError::PromptHasNul { offset });
        }
        let mut tokens = Vec::with_capacity(text.len() + 3);
        if bos {
            tokens.push(BOS);
        }
        if !text.is_empty() {
            tokens.push(self.space_id);
        }
        let mut buf = [0u8; 4];
        for ch in text.chars() {
            let s = ch.encode_utf8(&mut buf).as_bytes();
            match self.lookup(s) {
                Some(id) => tokens.push(id),
                None => {
                    for &b in s {
                        let id = b as usize + 3;
                        if id >= self.vocab_size() {
                            return Err(TokenizerError::NoBytePiece { byte: b, id, vocab_size: self.vocab_size() });
                        }
                        tokens.push(id as u32);
                    }
                }
            }
        }
        // Sized by the pieces there are, not by the header's `max_token_length`: that is
        // untrusted (up to i32::MAX), and trusting it asked the allocator for 4 GiB.
        let longest = self.pieces.iter().map(Vec::len).max().unwrap_or(0);
        let mut pair = Vec::with_capacity(2 * longest);
        loop {
            let mut best: Option<(f32, u32, usize)> = None;
            for i in 0..tokens.len().saturating_sub(1) {
                pair.clear();
                pair.extend_from_slice(self.piece(tokens[i]));
                pair.extend_from_slice(self.piece(tokens[i + 1]));
                if let Some(id) = self.lookup(&pair) {
                    let score = self.scores[id as usize];
                    // run.c starts from best_score = -1e10 and keeps strict improvements.
                    if score > best.map_or(-1e10, |b| b.0) {
                        best = Some((score, id, i));
                    }
                }
            }
            let Some((_, id, i)) = best else { break };
            tokens[i] = id;
            tokens.remove(i + 1);
        }
        if eos {
            tokens.push(EOS);
        }
        Ok(tokens)
    }

    /// run.c's `decode`: the piece for `token` after `prev` (leading space
    /// dropped after BOS, `<0xXX>` turned into the raw byte).
    pub fn decode(&self, prev: u32, token: u32) -> &[u8] {
        let mut piece = self.piece(token);
        if prev == BOS && piece.first() == Some(&b' ') {
            piece = &piece[1..];
        }
        match parse_byte_piece(piece) {
            Some(b) => &BYTES[b as usize..b as usize + 1],
            None => piece,
        }
    }

    /// [`decode`](Self::decode) filtered by run.c's `safe_printf`: what run.c
    /// prints (a single byte that is neither printable nor whitespace is dropped,
    /// and a byte piece for 0 prints nothing).
    pub fn decode_printable(&self, prev: u32, token: u32) -> &[u8] {
        let piece = self.decode(prev, token);
        let piece = &piece[..piece.iter().position(|&b| b == 0).unwrap_or(piece.len())];
        match piece {
            [b] if !(is_c_print(*b) || is_c_space(*b)) => &[],
            p => p,
        }
    }
}

/// Every byte value, for returning one-byte pieces by reference.
static BYTES: [u8; 256] = {
    let mut a = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        a[i] = i as u8;
        i += 1;
    }
    a
};

fn is_c_print(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `sscanf(piece, "<0x%02hhX>", &b) == 1`: after `<0x`, C whitespace is
/// skipped, then up to two characters: an optional sign and hex digits (at
/// least one). The closing `>` is not checked (it does not change the count).
/// Not modelled: scanf's optional `0x` prefix inside the two-character field.
fn parse_byte_piece(piece: &[u8]) -> Option<u8> {
    let rest = piece.strip_prefix(b"<0x")?;
    let start = rest.iter().position(|&b| !is_c_space(b))?;
    let field = &rest[start..rest.len().min(start + 2)];
    let (neg, digits) = match field.first()? {
        b'-' => (true, &field[1..]),
        b'+' => (false, &field[1..]),
        _ => (false, field),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if n == 0 {
        return None;
    }
    let mut v: u32 = 0;
    for &d in &digits[..n] {
        v = v * 16 + (d as char).to_digit(16)?;
    }
    let v = v as u8;
    Some(if neg { v.wrapping_neg() } else { v })
}
