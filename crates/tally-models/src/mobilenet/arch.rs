//! MobileNetV2's architecture as data: torchvision's inverted-residual table, the list of
//! `features` it expands to, and the analytic counts (parameters, matrix FPO) written from it.

/// torchvision's `inverted_residual_setting` at width 1.0: (expansion t, output channels c,
/// repeats n, stride s of the first repeat).
pub const INVERTED_RESIDUAL_SETTING: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];
/// Channels out of the stem convolution (`features.0`).
pub const STEM_CHANNELS: usize = 32;
/// Channels out of the last 1×1 convolution (`features.18`), the classifier's input.
pub const LAST_CHANNELS: usize = 1280;
/// ImageNet classes.
pub const NUM_CLASSES: usize = 1000;
/// The input side torchvision's weights were trained at.
pub const IMAGE_SIZE: usize = 224;
/// BatchNorm's epsilon in torchvision's MobileNetV2.
pub const BN_EPS: f64 = 1e-5;

/// One convolution of the network, as torchvision builds it (each is followed by a BatchNorm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Square kernel side (1 or 3).
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Channel groups (`c_in` for depthwise).
    pub groups: usize,
}

impl ConvSpec {
    /// Zero padding on every side: `(kernel - 1) / 2`, torchvision's "same" padding.
    pub fn padding(&self) -> usize {
        (self.kernel - 1) / 2
    }

    /// Output side for an input side `h`: `(h + 2·padding − kernel) / stride + 1`.
    pub fn out_size(&self, h: usize) -> usize {
        (h + 2 * self.padding() - self.kernel) / self.stride + 1
    }

    /// Matrix FPO on an (n, c_in, h, w) input, FlopCounterMode's convolution count:
    /// 2·n·c_out·h_out·w_out·(c_in/groups)·k².
    pub fn fpo(&self, n: usize, h: usize, w: usize) -> u64 {
        let per_output = (self.c_in / self.groups) * self.kernel * self.kernel;
        2 * (n * self.c_out * self.out_size(h) * self.out_size(w) * per_output) as u64
    }

    /// torchvision's parameters for this convolution and its BatchNorm: the bias-free kernel
    /// c_out·(c_in/groups)·k² plus the BatchNorm's weight and bias (2·c_out). Running
    /// statistics are buffers, not parameters.
    pub fn params(&self) -> usize {
        self.c_out * (self.c_in / self.groups) * self.kernel * self.kernel + 2 * self.c_out
    }
}

/// One inverted residual block: optional 1×1 expansion, 3×3 depthwise, 1×1 linear projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Expansion ratio t; 1 means no expansion convolution.
    pub expand: usize,
    /// Stride of the depthwise convolution.
    pub stride: usize,
}

impl BlockSpec {
    /// Hidden channels, `round(c_in · t)`.
    pub fn hidden(&self) -> usize {
        self.c_in * self.expand
    }

    /// Whether the input is added to the output (stride 1 and c_in == c_out).
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.c_in == self.c_out
    }

    /// The expansion convolution (1×1, ReLU6), absent when t = 1.
    pub fn expand_conv(&self) -> Option<ConvSpec> {
        (self.expand != 1).then(|| ConvSpec {
            c_in: self.c_in,
            c_out: self.hidden(),
            kernel: 1,
            stride: 1,
            groups: 1,
        })
    }

    /// The depthwise convolution (3×3, the block's stride, ReLU6).
    pub fn depthwise_conv(&self) -> ConvSpec {
        ConvSpec {
            c_in: self.hidden(),
            c_out: self.hidden(),
            kernel: 3,
            stride: self.stride,
            groups: self.hidden(),
        }
    }

    /// The linear projection (1×1, no activation).
    pub fn project_conv(&self) -> ConvSpec {
        ConvSpec {
            c_in: self.hidden(),
            c_out: self.c_out,
            kernel: 1,
            stride: 1,
            groups: 1,
        }
    }

    /// The block's convolutions in execution order.
    pub fn convs(&self) -> Vec<ConvSpec> {
        let mut convs: Vec<ConvSpec> = self.expand_conv().into_iter().collect();
        convs.push(self.depthwise_conv());
        convs.push(self.project_conv());
        convs
    }
}

/// One entry of torchvision's `features` sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureSpec {
    /// Conv + BatchNorm + ReLU6 (`features.0`, the stem, and `features.18`, the last 1×1).
    ConvBnRelu6(ConvSpec),
    /// An inverted residual block (`features.1` to `features.17`).
    Block(BlockSpec),
}

impl FeatureSpec {
    /// The entry's convolutions in execution order.
    pub fn convs(&self) -> Vec<ConvSpec> {
        match self {
            FeatureSpec::ConvBnRelu6(c) => vec![*c],
            FeatureSpec::Block(b) => b.convs(),
        }
    }
}

/// torchvision's `features`: the stem, 17 inverted residual blocks, the last 1×1 convolution.
pub fn features() -> Vec<FeatureSpec> {
    let mut out = vec![FeatureSpec::ConvBnRelu6(ConvSpec {
        c_in: 3,
        c_out: STEM_CHANNELS,
        kernel: 3,
        stride: 2,
        groups: 1,
    })];
    let mut c_in = STEM_CHANNELS;
    for (t, c, n, s) in INVERTED_RESIDUAL_SETTING {
        for i in 0..n {
            out.push(FeatureSpec::Block(BlockSpec {
                c_in,
                c_out: c,
                expand: t,
                stride: if i == 0 { s } else { 1 },
            }));
            c_in = c;
        }
    }
    out.push(FeatureSpec::ConvBnRelu6(ConvSpec {
        c_in,
        c_out: LAST_CHANNELS,
        kernel: 1,
        stride: 1,
        groups: 1,
    }));
    out
}

/// torchvision's parameter count: every convolution with its BatchNorm's weight and bias,
/// plus the classifier's 1280·1000 weights and 1000 biases (3,504,872).
pub fn num_params() -> usize {
    let convs: usize = features()
        .iter()
        .flat_map(FeatureSpec::convs)
        .map(|c| c.params())
        .sum();
    convs + LAST_CHANNELS * NUM_CLASSES + NUM_CLASSES
}

/// Matrix FPO of one forward pass on an (n, 3, h, w) batch, what FlopCounterMode counts:
/// Σ over convolutions of 2·n·c_out·h_out·w_out·(c_in/groups)·k², plus the classifier's
/// 2·n·1280·1000. Bias adds (the folded BatchNorms', the classifier's), ReLU6, the residual
/// adds and the average pool are excluded, as FlopCounterMode excludes them.
pub fn contraction_fpo(n: usize, h: usize, w: usize) -> u64 {
    let (mut h, mut w, mut total) = (h, w, 0u64);
    for conv in features().iter().flat_map(FeatureSpec::convs) {
        total += conv.fpo(n, h, w);
        h = conv.out_size(h);
        w = conv.out_size(w);
    }
    total + 2 * (n * LAST_CHANNELS * NUM_CLASSES) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_expands_to_torchvisions_19_features() {
        let f = features();
        assert_eq!(f.len(), 19); // stem + 17 blocks + last conv
        let blocks: Vec<BlockSpec> = f
            .iter()
            .filter_map(|x| match x {
                FeatureSpec::Block(b) => Some(*b),
                _ => None,
            })
            .collect();
        assert_eq!(blocks.len(), 17);
        assert_eq!(blocks.iter().filter(|b| b.residual()).count(), 10);
        assert_eq!(blocks[16].c_out, 320);
    }

    #[test]
    fn params_match_torchvision() {
        assert_eq!(num_params(), 3_504_872);
    }

    #[test]
    fn fpo_at_224_is_300m_macs() {
        // 300.77M MACs per image for the convolutions and classifier (torchvision's model card
        // rounds it to 300M); 2 FPO per MAC.
        assert_eq!(contraction_fpo(1, 224, 224), 601_548_544);
        assert_eq!(contraction_fpo(2, 224, 224), 2 * 601_548_544);
    }
}
