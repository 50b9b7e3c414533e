//! run.c's `generate` loop: feed the prompt, then sample; stop when BOS is
//! sampled or after `steps` positions.
use alloc::vec::Vec;
use core::fmt;

use crate::model::{ForwardError, Transformer};
use crate::parallel::Parallel;
use crate::sampler::Sampler;
use crate::tokenizer::{BOS, Tokenizer, TokenizerError};

/// Why a generation could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerateError {
    /// The prompt could not be encoded.
    Tokenizer(TokenizerError),
    /// The tokenizer's vocabulary does not match the model's.
    VocabMismatch { tokenizer: usize, model: usize },
    /// The encoded prompt (BOS included) does not fit in the context.
    PromptTooLong { tokens: usize, seq_len: usize },
    /// The forward pass was called out of range (a bug: the loop checks).
    Forward(ForwardError),
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tokenizer(e) => write!(f, "{e}"),
            Self::VocabMismatch { tokenizer, model } => write!(
                f,
                "tokenizer has {tokenizer} tokens but the model has {model}: use the model's tokenizer"
            ),
            Self::PromptTooLong { tokens, seq_len } => write!(
                f,
                "prompt is {tokens} tokens (with BOS), longer than the model's context of {seq_len}: shorten it"
            ),
            Self::Forward(e) => write!(f, "{e}"),
        }
    }
}

impl From<TokenizerError> for GenerateError {
    fn from(e: TokenizerError) -> Self {
        GenerateError::Tokenizer(e)
    }
}

impl From<ForwardError> for GenerateError {
    fn from(e: ForwardError) -> Self {
        GenerateError::Forward(e)
    }
}

/// What a generation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The encoded prompt, BOS first.
    pub prompt_tokens: Vec<u32>,
    /// The token chosen at each position (prompt tokens while the prompt is
    /// fed, then sampled ones), without the BOS that stops generation.
    pub tokens: Vec<u32>,
    /// Everything printed, as run.c's stdout (the final newline included).
    pub text: Vec<u8>,
    /// Positions run (run.c's `pos` at the end).
    pub positions: usize,
    /// Generation stopped because BOS was sampled.
    pub stopped_at_bos: bool,
    /// Positions run by the prefill (the first pieces, all at once).
    pub prefilled: usize,
}

/// run.c's step clamp: 0 or more than `seq_len` means `seq_len`.
pub fn clamp_steps(steps: usize, seq_len: usize) -> usize {
    if steps == 0 || steps > seq_len { seq_len } else { steps }
}

/// Generates like run.c's `generate`: `steps` is clamped with [`clamp_steps`];
/// `on_piece(token, bytes)` is called with what run.c prints for each token.
/// The prompt's positions run first as one [`Transformer::prefill`] (in
/// batches, same bits as one by one), so their pieces come together after it;
/// [`Generation::prefilled`] says how many there were.
pub fn generate(
    model: &mut Transformer<'_>,
    tokenizer: &Tokenizer,
    sampler: &mut Sampler,
    prompt: &str,
    steps: usize,
    par: &dyn Parallel,
    on_piece: &mut dyn FnMut(u32, &[u8]),
) -> Result<Generation, GenerateError> {
    let c = *model.config();
    if tokenizer.vocab_size() != c.vocab_size {
        return Err(GenerateError::VocabMismatch { tokenizer: tokenizer.vocab_size(), model: c.vocab_size });
    }
    let prompt_tokens = tokenizer.encode(prompt, true, false)?;
    if prompt_tokens.len() > c.seq_len {
        return Err(GenerateError::PromptTooLong { tokens: prompt_tokens.len(), seq_len: c.seq_len });
    }
    let steps = clamp_steps(steps, c.seq_len);
    let mut tokens = Vec::with_capacity(steps);
    // The positions whose next token is the prompt's (and not BOS, where run.c
    // stops): their logits are not needed, so they run as a batched prefill,
    // which leaves the KV cache as run.c's one-by-one loop would.
    let fed = prompt_tokens.iter().skip(1).take_while(|&&t| t != BOS).count().min(steps);
    model.prefill(&prompt_tokens[..fed], 0, par)?;
    let mut text = Vec::new();
    let mut token = prompt_tokens[0];
    let mut pos = 0;
    let mut stopped_at_bos = false;
    while pos < steps {
        let next = if pos + 1 < prompt_tokens.len() {
            // A prompt position: its logits are not used; the first `fed` ran in the prefill.
            if pos >= fed {
                model.forward(token, pos, par)?;
            }
            prompt_tokens[pos + 1]
        } else {
            sampler.sample(model.forward(token, pos, par)?)
        };
        pos += 1;
        if next == BOS {
            stopped_at_bos = true;
            break;
        }
        let piece = tokenizer.decode_printable(token, next);
        text.extend_from_slice(piece);
        on_piece(next, piece);
        tokens.push(next);
        token = next;
    }
    text.push(b'\n');
    Ok(Generation { prompt_tokens, tokens, text, positions: pos, stopped_at_bos, prefilled: fed })
}
