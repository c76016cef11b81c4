//! [`Activation`]: the elementwise nonlinearities a model config can name.

use std::str::FromStr;

use serde::Deserialize;
use tally_core::{Error, Result};
use tally_tensor::Tensor;

/// An elementwise activation, as named in model configs (`hidden_act`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// GELU with the exact erf (`gelu`).
    GeluErf,
    /// GELU, tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// x·σ(x) (`silu`, `swish`).
    Silu,
    /// tanh(x).
    Tanh,
    /// x unchanged, no kernel run.
    Identity,
}

impl Activation {
    /// Applies the activation: one counted unary kernel (none for `Identity`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::GeluErf => x.gelu_erf(),
            Activation::GeluTanh => x.gelu_tanh(),
            Activation::Silu => x.silu(),
            Activation::Tanh => x.tanh(),
            Activation::Identity => Ok(x.clone()),
        }
    }

    /// The name Hugging Face configs use for it.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::GeluErf => "gelu",
            Activation::GeluTanh => "gelu_pytorch_tanh",
            Activation::Silu => "silu",
            Activation::Tanh => "tanh",
            Activation::Identity => "identity",
        }
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses a config name: `relu`, `gelu`, `gelu_new`, `gelu_fast`, `gelu_pytorch_tanh`,
    /// `silu`, `swish`, `tanh`, `identity`/`linear` (case-insensitive).
    fn from_str(s: &str) -> Result<Activation> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "relu" => Activation::Relu,
            "gelu" | "gelu_erf" => Activation::GeluErf,
            "gelu_new" | "gelu_fast" | "gelu_pytorch_tanh" | "gelu_tanh" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            "identity" | "linear" | "none" => Activation::Identity,
            _ => {
                return Err(Error::invalid(
                    "activation",
                    format!("unknown activation `{s}`"),
                ))
            }
        })
    }
}

impl TryFrom<String> for Activation {
    type Error = Error;

    fn try_from(s: String) -> Result<Activation> {
        s.parse()
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
