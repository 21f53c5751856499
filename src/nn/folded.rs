//! Evaluation-mode classifiers with every batch norm folded into the layer before it (issue 16).
//!
//! In evaluation mode batch norm is the fixed affine map h ↦ s·(h − μ) + β with
//! s = γ / √(σ² + ε), so the layer before it with weights W·s and bias (b − μ)·s + β computes
//! the same function with one elementwise pass fewer per layer, forward and backward. Attacks
//! make hundreds of evaluation-mode passes with fixed weights, so they fold once. The folded
//! weights are detached: attacks differentiate with respect to the input only. (Channels-last
//! convolutions were tried with it and measured slower: PGD-10 on Baseline-H, 2 threads, Zen 3.)
use super::blocks::ConvBlock;
use super::classifier::EncoderClassifier;
use super::encoder::Encoder;
use super::heads::Head;
use super::init::BN_EPS;
use super::window::{Classifier, Stencil, Window, WindowSearch};
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// A layer's weights (output dimension first) and bias, detached, with the batch norm after
/// it (if any) folded in.
#[derive(Debug)]
struct Affine {
    weight: Tensor,
    bias: Tensor,
}

impl Affine {
    /// A layer with no batch norm after it.
    fn new(weight: &Tensor, bias: Option<&Tensor>) -> Self {
        tch::no_grad(|| Self {
            weight: weight.detach().copy(),
            bias: bias.map_or_else(
                || Tensor::zeros([weight.size()[0]], (weight.kind(), weight.device())),
                |b| b.detach().copy(),
            ),
        })
    }

    /// `weight` and `bias` followed by `bn` in evaluation mode.
    fn folded(weight: &Tensor, bias: Option<&Tensor>, bn: &nn::BatchNorm) -> Self {
        tch::no_grad(|| {
            let mut scale = (&bn.running_var + BN_EPS).rsqrt();
            if let Some(gamma) = &bn.ws {
                scale *= gamma;
            }
            let mut shape = vec![1i64; weight.dim()];
            shape[0] = -1;
            let bias = bias.map_or_else(|| -&bn.running_mean, |b| b - &bn.running_mean) * &scale;
            Self {
                weight: weight * scale.view(shape.as_slice()),
                bias: match &bn.bs {
                    Some(beta) => bias + beta,
                    None => bias,
                },
            }
        })
    }

    fn linear(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

/// A k4s2p1 block: the convolution with its batch norm folded in, then ReLU.
#[derive(Debug)]
struct FoldedConv(Affine);

impl FoldedConv {
    /// Input channels up to which a CPU convolution runs as im2col and one matrix product.
    /// oneDNN is slow on the first layer's few channels (PyTorch 2.13, batch 128, one thread of
    /// the Intel Xeon: forward and input gradient with ReLU 12.95 ms against 5.96 by im2col on
    /// MNIST's one channel, 26.8 against 13.0 on CIFAR-10's three; from 64 channels on oneDNN
    /// is faster, 22.8 against 55.9), and attacks run that pair every step: PGD-10 on
    /// Baseline-H took 550 ms against 574 (three alternating pairs, same machine).
    const IM2COL_MAX_CHANNELS: i64 = 3;

    /// Which outputs read which inputs.
    const STENCIL: Stencil = Stencil {
        kernel: ConvBlock::KERNEL,
        stride: ConvBlock::STRIDE,
        padding: ConvBlock::PADDING,
    };

    fn new(block: &ConvBlock) -> Self {
        let (conv, bn) = (&block.conv, &block.bn);
        Self(Affine::folded(&conv.ws, conv.bs.as_ref(), bn))
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.convolve(x, [ConvBlock::PADDING; 2], Self::im2col(x))
            .relu()
    }

    /// The block on an input whose sides need the zero padding `pad` (`[left, right, top,
    /// bottom]`): a window's part of the output ([`WindowedLogits`]). Symmetric padding is
    /// left to the convolution, which is faster with it than on a padded copy.
    fn forward_padded(&self, x: &Tensor, pad: [i64; 4]) -> Tensor {
        let [left, right, top, bottom] = pad;
        if left == right && top == bottom {
            return self.convolve(x, [top, left], Self::im2col(x)).relu();
        }
        let x = x.constant_pad_nd(pad);
        self.convolve(&x, [0; 2], Self::im2col(&x)).relu()
    }

    /// Whether `x` is convolved as im2col and a matrix product: on a CPU, with few channels.
    fn im2col(x: &Tensor) -> bool {
        x.device() == tch::Device::Cpu && x.size()[1] <= Self::IM2COL_MAX_CHANNELS
    }

    /// The folded convolution with `padding` above and below and left and right, by oneDNN or
    /// as im2col and a matrix product (same function).
    fn convolve(&self, x: &Tensor, padding: [i64; 2], im2col: bool) -> Tensor {
        let (kernel, stride) = (ConvBlock::KERNEL, ConvBlock::STRIDE);
        let Affine { weight, bias } = &self.0;
        if !im2col {
            return x.conv2d(weight, Some(bias), [stride; 2], padding, [1; 2], 1);
        }
        let size = x.size();
        let side = |n: i64, padding: i64| (n + 2 * padding - kernel) / stride + 1;
        let columns = x.im2col([kernel; 2], [1; 2], padding, [stride; 2]);
        (weight.flatten(1, -1).matmul(&columns) + bias.view([1, -1, 1])).view([
            size[0],
            -1,
            side(size[2], padding[0]),
            side(size[3], padding[1]),
        ])
    }

    /// The kernel's taps, `[kernel, kernel, in, out]`: what [`FoldedConv::delta`] multiplies.
    fn taps(&self) -> Tensor {
        self.0.weight.permute([2, 3, 1, 0]).contiguous()
    }

    /// How this convolution's outputs (before bias and ReLU) change when its input changes by
    /// `delta` (`[N, C, rows, cols]`) inside `window`: the outputs of the map `output` (its
    /// shape) that read the window, and
    /// their change. It is linear, so each kernel tap is one matrix product over the inputs it
    /// reads and the cost follows the changed inputs, where a convolution over the reached
    /// outputs would read all their receptive fields (the third convolution's 3×3 map is
    /// almost wholly reached by any window).
    fn delta(taps: &Tensor, delta: &Tensor, window: &Window, output: &Tensor) -> (Window, Tensor) {
        let Stencil { kernel, stride, .. } = Self::STENCIL;
        let reached = Self::STENCIL.reached(window, output);
        let output = output.size();
        let output = [output[2], output[3]];
        let size = taps.size();
        // Channels last, so that each tap is one matrix product on rows of channels.
        let delta = delta.permute([0, 2, 3, 1]);
        let change = Tensor::zeros(
            [
                delta.size()[0],
                reached.rows.end - reached.rows.start,
                reached.cols.end - reached.cols.start,
                size[3],
            ],
            (delta.kind(), delta.device()),
        );
        for kr in 0..kernel {
            let Some((ir, or, nr)) = Self::STENCIL.through(&window.rows, kr, output[0]) else {
                continue;
            };
            for kc in 0..kernel {
                let Some((ic, oc, nc)) = Self::STENCIL.through(&window.cols, kc, output[1]) else {
                    continue;
                };
                let (ir, ic) = (ir - window.rows.start, ic - window.cols.start);
                let inputs = delta
                    .slice(1, ir, ir + (nr - 1) * stride + 1, stride)
                    .slice(2, ic, ic + (nc - 1) * stride + 1, stride);
                let product = inputs
                    .reshape([-1, size[2]])
                    .mm(&taps.get(kr).get(kc))
                    .view([-1, nr, nc, size[3]]);
                let (or, oc) = (or - reached.rows.start, oc - reached.cols.start);
                let mut outputs = change.slice(1, or, or + nr, 1).slice(2, oc, oc + nc, 1);
                outputs += product;
            }
        }
        (reached, change.permute([0, 3, 1, 2]))
    }
}

/// The basic encoder in evaluation mode, folded: what the worst-case objective's PGD
/// differentiates.
#[derive(Debug)]
pub struct FoldedEncoder {
    convs: [FoldedConv; 3],
    fc1: Affine,
    fc2: Affine,
}

impl FoldedEncoder {
    /// The encoder's current weights, folded (fold again after they change).
    pub fn new(e: &Encoder) -> Self {
        Self {
            convs: [&e.conv1, &e.conv2, &e.conv3].map(FoldedConv::new),
            fc1: Affine::folded(&e.fc1.ws, e.fc1.bs.as_ref(), &e.fc1_bn),
            fc2: Affine::new(&e.fc2.ws, e.fc2.bs.as_ref()),
        }
    }

    /// `[N, C, H, W]` → `[N, 64]`, as the encoder's `forward_t(x, false)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = self
            .convs
            .iter()
            .fold(x.shallow_clone(), |h, conv| conv.forward(&h));
        self.dense(&h)
    }

    /// The fully connected layers on the last convolution's map.
    fn dense(&self, h: &Tensor) -> Tensor {
        self.fc2.linear(&self.fc1.linear(&h.flatten(1, -1)).relu())
    }
}

/// A head, folded: the MLP's batch norm goes into its first layer (its dropout is the
/// identity in evaluation mode).
#[derive(Debug)]
enum FoldedHead {
    Linear(Affine),
    Mlp(Affine, Affine),
}

impl FoldedHead {
    fn new(head: &Head) -> Self {
        match head {
            Head::Linear { fc } => FoldedHead::Linear(Affine::new(&fc.ws, fc.bs.as_ref())),
            Head::Mlp { fc1, bn, fc2 } => FoldedHead::Mlp(
                Affine::folded(&fc1.ws, fc1.bs.as_ref(), bn),
                Affine::new(&fc2.ws, fc2.bs.as_ref()),
            ),
        }
    }

    fn forward(&self, z: &Tensor) -> Tensor {
        match self {
            FoldedHead::Linear(fc) => fc.linear(z),
            FoldedHead::Mlp(fc1, fc2) => fc2.linear(&fc1.linear(z).relu()),
        }
    }
}

/// An encoder with a head in evaluation mode, batch norms folded: what attacks differentiate.
/// It computes the classifier's evaluation-mode logits only, so training through it is refused.
#[derive(Debug)]
pub struct FoldedClassifier {
    encoder: FoldedEncoder,
    head: FoldedHead,
}

impl FoldedClassifier {
    /// The classifier's current weights, folded (fold again after they change).
    pub fn new(classifier: &EncoderClassifier) -> Self {
        Self {
            encoder: FoldedEncoder::new(&classifier.encoder),
            head: FoldedHead::new(&classifier.head),
        }
    }

    /// Its encoder: the classifier's representation, folded.
    pub fn encoder(&self) -> &FoldedEncoder {
        &self.encoder
    }
}

impl Classifier for FoldedClassifier {
    fn window_search(&self) -> Option<Box<dyn WindowSearch + '_>> {
        Some(Box::new(WindowedLogits {
            classifier: self,
            taps: self.encoder.convs[1..]
                .iter()
                .map(FoldedConv::taps)
                .collect(),
            best: Vec::new(),
            changed: Vec::new(),
        }))
    }
}

/// A folded classifier's logits under a window search (issue 16). Square changes one small
/// window per query, so the best points' maps are kept and a candidate recomputes only what its
/// window reaches: the first convolution's outputs that read the window (a small convolution
/// over the pixels they read), then each later convolution's change from its input's change
/// ([`FoldedConv::delta`], on its kept output before ReLU), then the fully connected layers.
/// Same function as the plain forward, within float rounding.
struct WindowedLogits<'a> {
    classifier: &'a FoldedClassifier,
    /// The taps of each convolution after the first ([`FoldedConv::taps`]).
    taps: Vec<Tensor>,
    /// The best points' maps: after the first convolution, then each later one's output
    /// before and after ReLU.
    best: Vec<Tensor>,
    /// The last candidate's values of `best`, each over the window where they changed.
    changed: Vec<(Window, Tensor)>,
}

impl WindowedLogits<'_> {
    fn logits(&self, h: &Tensor) -> Tensor {
        let c = self.classifier;
        c.head.forward(&c.encoder.dense(h))
    }
}

impl WindowSearch for WindowedLogits<'_> {
    fn reset(&mut self, x: &Tensor) -> Tensor {
        let (first, later) = self
            .classifier
            .encoder
            .convs
            .split_first()
            .expect("convolutions");
        let mut h = first.forward(x);
        self.best = vec![h.shallow_clone()];
        self.changed.clear();
        for conv in later {
            let a = conv.convolve(&h, [ConvBlock::PADDING; 2], FoldedConv::im2col(&h));
            h = a.relu();
            self.best.extend([a, h.shallow_clone()]);
        }
        self.logits(&h)
    }

    fn window(&mut self, candidate: &Tensor, window: &Window) -> Tensor {
        let first = &self.classifier.encoder.convs[0];
        let outputs = FoldedConv::STENCIL.reached(window, &self.best[0]);
        let (read, pad) = FoldedConv::STENCIL.read(&outputs, candidate);
        let values = first.forward_padded(&read.of(candidate), pad);
        let mut delta = &values - outputs.of(&self.best[0]);
        self.changed = vec![(outputs.clone(), values)];
        let mut window = outputs;
        for (l, taps) in self.taps.iter().enumerate() {
            let (a_best, h_best) = (&self.best[2 * l + 1], &self.best[2 * l + 2]);
            let (reached, change) = FoldedConv::delta(taps, &delta, &window, a_best);
            let a = reached.of(a_best) + change;
            let h = a.relu();
            delta = &h - reached.of(h_best);
            self.changed
                .extend([(reached.clone(), a), (reached.clone(), h)]);
            window = reached;
        }
        let (changed, values) = self.changed.last().expect("a convolution");
        let h = self.best.last().expect("a convolution").copy();
        changed.of(&h).copy_(values);
        self.logits(&h)
    }

    fn accept(&mut self, improved: &Tensor) {
        let mask = improved.view([-1, 1, 1, 1]);
        for (best, (changed, values)) in self.best.iter().zip(&self.changed) {
            let mut kept = changed.of(best);
            kept.copy_(&values.where_self(&mask, &kept));
        }
    }
}

impl ModuleT for FoldedClassifier {
    /// Pixels `[N, C, H, W]` → logits, as the classifier's `forward_t(x, false)`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        assert!(
            !train,
            "a folded classifier computes evaluation-mode logits only; train the classifier"
        );
        self.head.forward(&self.encoder.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::heads::HeadKind;
    use tch::{Device, Kind};

    /// A classifier whose batch norms have non-trivial statistics and affine parameters.
    fn classifier(vs: &nn::VarStore, head: HeadKind) -> EncoderClassifier {
        classifier_for(vs, head, [1, 28, 28])
    }

    fn classifier_for(vs: &nn::VarStore, head: HeadKind, shape: [i64; 3]) -> EncoderClassifier {
        let model = EncoderClassifier::new(&vs.root(), shape, head, 10, false);
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                if name.contains("bn") {
                    let _ = t.uniform_(0.5, 1.5);
                }
            }
            let e = &model.encoder;
            let norms = [&e.conv1.bn, &e.conv2.bn, &e.conv3.bn, &e.fc1_bn];
            for bn in norms.into_iter().chain(match &model.head {
                Head::Mlp { bn, .. } => Some(bn),
                Head::Linear { .. } => None,
            }) {
                let _ = bn.running_mean.shallow_clone().uniform_(-0.5, 0.5);
                let _ = bn.running_var.shallow_clone().uniform_(0.2, 3.0);
            }
        });
        model
    }

    #[test]
    fn folding_keeps_the_representation_the_logits_and_their_input_gradient() {
        tch::manual_seed(3);
        for head in [HeadKind::Mlp, HeadKind::Linear] {
            let vs = nn::VarStore::new(Device::Cpu);
            let model = classifier(&vs, head);
            let folded = FoldedClassifier::new(&model);
            let x =
                Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5]);
            let gradient = |m: &dyn ModuleT| {
                let logits = m.forward_t(&x, false);
                let loss = logits.cross_entropy_for_logits(&y);
                let g = Tensor::run_backward(&[loss], &[&x], false, false).remove(0);
                (logits.detach(), g)
            };
            let (logits, grad) = gradient(&model);
            let (folded_logits, folded_grad) = gradient(&folded);
            let gap =
                |a: &Tensor, b: &Tensor| ((a - b).abs().max() / b.abs().max()).double_value(&[]);
            assert!(gap(&folded_logits, &logits) < 1e-5, "{head:?} logits");
            let z = tch::no_grad(|| model.encoder.forward_t(&x, false));
            let folded_z = tch::no_grad(|| FoldedEncoder::new(&model.encoder).forward(&x));
            assert!(gap(&folded_z, &z) < 1e-5, "representation");
            assert!(gap(&folded_grad, &grad) < 1e-4, "{head:?} gradient");
        }
    }

    #[test]
    fn the_im2col_convolution_is_onednns_forward_and_backward() {
        tch::manual_seed(4);
        for (channels, side) in [(1, 28), (3, 32), (3, 7)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let block = ConvBlock::new(&vs.root(), channels, 16);
            tch::no_grad(|| {
                let _ = block.bn.running_mean.shallow_clone().uniform_(-0.5, 0.5);
                let _ = block.bn.running_var.shallow_clone().uniform_(0.2, 3.0);
            });
            let conv = FoldedConv::new(&block);
            let x = Tensor::rand([5, channels, side, side], (Kind::Float, Device::Cpu))
                .set_requires_grad(true);
            let weights = Tensor::rand([5, 16, side / 2, side / 2], (Kind::Float, Device::Cpu));
            let run = |im2col: bool| {
                let y = conv.convolve(&x, [ConvBlock::PADDING; 2], im2col);
                let loss = (&y * &weights).sum(Kind::Float);
                let g = Tensor::run_backward(&[loss], &[&x], false, false).remove(0);
                (y.detach(), g)
            };
            let ((y, g), (plain_y, plain_g)) = (run(true), run(false));
            assert_eq!(y.size(), plain_y.size());
            let gap =
                |a: &Tensor, b: &Tensor| ((a - b).abs().max() / b.abs().max()).double_value(&[]);
            assert!(gap(&y, &plain_y) < 1e-5, "{channels} channels: output");
            assert!(
                gap(&g, &plain_g) < 1e-5,
                "{channels} channels: input gradient"
            );
        }
    }

    #[test]
    fn windowed_logits_are_the_plain_forwards_as_the_best_points_change() {
        tch::manual_seed(5);
        let gap = |a: &Tensor, b: &Tensor| ((a - b).abs().max() / b.abs().max()).double_value(&[]);
        for (shape, head) in [
            ([1, 28, 28], HeadKind::Mlp),
            ([3, 32, 32], HeadKind::Linear),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let folded = FoldedClassifier::new(&classifier_for(&vs, head, shape));
            let [c, side, _] = shape;
            let mut best = Tensor::rand([6, c, side, side], (Kind::Float, Device::Cpu));
            tch::no_grad(|| {
                let plain = |x: &Tensor| folded.forward_t(x, false);
                let mut search = folded.window_search().expect("a folded classifier");
                assert!(gap(&search.reset(&best), &plain(&best)) < 1e-4);
                // Windows of every size, at the corners, the edges and inside; each check also
                // sees the kept maps of every point accepted before it.
                for size in [1, 2, 3, 4, 6, 9, side] {
                    for (row, col) in [(0, 0), (side - size, side - size), (0, (side - size) / 2)] {
                        let window = Window {
                            rows: row..row + size,
                            cols: col..col + size,
                        };
                        let candidate = best.copy();
                        window.of(&candidate).copy_(&window.of(&best).rand_like());
                        let logits = search.window(&candidate, &window);
                        assert!(
                            gap(&logits, &plain(&candidate)) < 1e-4,
                            "{shape:?}: window {window:?}"
                        );
                        let improved = Tensor::rand([6], (Kind::Float, Device::Cpu)).lt(0.5);
                        search.accept(&improved);
                        best = candidate.where_self(&improved.view([-1, 1, 1, 1]), &best);
                    }
                }
            });
        }
    }

    #[test]
    #[should_panic(expected = "evaluation-mode logits only")]
    fn a_folded_classifier_does_not_train() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = classifier(&vs, HeadKind::Linear);
        let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let _ = FoldedClassifier::new(&model).forward_t(&x, true);
    }
}
