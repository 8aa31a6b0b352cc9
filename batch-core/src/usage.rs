//! Token and cost accounting, shared by runners, errors, events and the
//! journal (its own module so that none of them imports another for it).

use serde::{Deserialize, Serialize};

/// Token and cost accounting reported by an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Input (prompt) tokens, cache reads included.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in US dollars, when the agent reports it.
    pub cost_usd: Option<f64>,
    /// Agent turns.
    pub turns: Option<u32>,
}

impl Usage {
    /// Usage of `input_tokens` and `output_tokens`, without cost or turns.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            ..Self::default()
        }
    }

    /// Sets [`Usage::cost_usd`]: the cost in US dollars.
    pub fn with_cost_usd(mut self, cost_usd: f64) -> Self {
        self.cost_usd = Some(cost_usd);
        self
    }

    /// Sets [`Usage::turns`]: the agent turns.
    pub fn with_turns(mut self, turns: u32) -> Self {
        self.turns = Some(turns);
        self
    }

    /// Adds another usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        self.turns = match (self.turns, other.turns) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }
}
