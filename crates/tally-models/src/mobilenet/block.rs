//! [`InvertedResidual`] and [`relu6`]: MobileNetV2's building blocks on Tally's counted ops,
//! with every BatchNorm already folded into its convolution.

use tally_core::backend::ConvActivation;
use tally_core::{scope, Result};
use tally_nn::{Conv2d, WeightStore};
use tally_tensor::Tensor;

use super::arch::BlockSpec;
use super::fold::conv_bn;

/// The clamp after every conv-BN of a block but the projection.
const RELU6: ConvActivation = ConvActivation::Relu6;

/// ReLU6, `min(max(x, 0), 6)`: one counted pass (two comparisons, 2 adds, per element).
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    x.relu6()
}

/// One inverted residual block (torchvision's `InvertedResidual`): an optional 1×1 expansion
/// with ReLU6, a 3×3 depthwise convolution with ReLU6, a 1×1 linear projection, and the input
/// added back when the stride is 1 and the channels match.
#[derive(Clone, Debug)]
pub struct InvertedResidual {
    spec: BlockSpec,
    expand: Option<Conv2d>,
    depthwise: Conv2d,
    project: Conv2d,
}

impl InvertedResidual {
    /// Loads block `prefix` (`features.{i}`) from torchvision's names, folding each
    /// BatchNorm: with expansion `conv.0.{0,1}` (expand), `conv.1.{0,1}` (depthwise),
    /// `conv.2` + `conv.3` (projection); without, `conv.0.{0,1}`, `conv.1` + `conv.2`.
    pub fn load(
        store: &WeightStore,
        prefix: &str,
        spec: BlockSpec,
        dtype: tally_core::DType,
    ) -> Result<InvertedResidual> {
        let p = |s: &str| format!("{prefix}.conv.{s}");
        let (expand, next) = match spec.expand_conv() {
            Some(e) => (
                Some(conv_bn(store, &p("0.0"), &p("0.1"), e, RELU6, dtype)?),
                1,
            ),
            None => (None, 0),
        };
        let depthwise = conv_bn(
            store,
            &p(&format!("{next}.0")),
            &p(&format!("{next}.1")),
            spec.depthwise_conv(),
            RELU6,
            dtype,
        )?;
        let project = conv_bn(
            store,
            &p(&(next + 1).to_string()),
            &p(&(next + 2).to_string()),
            spec.project_conv(),
            ConvActivation::None,
            dtype,
        )?;
        Ok(InvertedResidual {
            spec,
            expand,
            depthwise,
            project,
        })
    }

    /// The block's shape.
    pub fn spec(&self) -> BlockSpec {
        self.spec
    }

    /// x (n, c_in, h, w) → (n, c_out, h/stride, w/stride). The convolutions run under the
    /// caller's scope, in the sub-scopes `expand`, `depthwise`, `project` (and `residual`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = match &self.expand {
            Some(e) => scope("expand", || e.forward(x))?,
            None => x.clone(),
        };
        let h = scope("depthwise", || self.depthwise.forward(&h))?;
        let y = scope("project", || self.project.forward(&h))?;
        if self.spec.residual() {
            scope("residual", || x.add(&y))
        } else {
            Ok(y)
        }
    }
}
