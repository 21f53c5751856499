//! Searches that change one window of an image batch at a time (Square, SPEC §4's black-box
//! member of AutoAttack): what a network computes for them, and how much of it a window reaches.
use std::ops::Range;
use tch::nn::ModuleT;
use tch::{IndexOp, Tensor};

/// A rectangle of pixel rows and columns, shared by every image of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub rows: Range<i64>,
    pub cols: Range<i64>,
}

impl Window {
    /// Every pixel of a `[N, C, H, W]` batch.
    pub fn whole(x: &Tensor) -> Self {
        let size = x.size();
        Self {
            rows: 0..size[2],
            cols: 0..size[3],
        }
    }

    /// The window's part of a `[N, C, H, W]` map, as a view.
    pub fn of(&self, map: &Tensor) -> Tensor {
        map.i((.., .., self.rows.clone(), self.cols.clone()))
    }
}

/// A convolution's geometry along each side of its maps: which outputs read which inputs.
#[derive(Clone, Copy, Debug)]
pub struct Stencil {
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
}

impl Stencil {
    /// The outputs of the `[N, C, H, W]` map `output` that read a pixel of `window`.
    pub fn reached(&self, window: &Window, output: &Tensor) -> Window {
        let Self {
            kernel,
            stride,
            padding,
        } = *self;
        let reach = |r: &Range<i64>, size: i64| {
            let first = (r.start - kernel + 1 + padding).div_euclid(stride)
                + i64::from((r.start - kernel + 1 + padding).rem_euclid(stride) != 0);
            let last = (r.end - 1 + padding).div_euclid(stride);
            first.max(0)..(last + 1).min(size)
        };
        let size = output.size();
        Window {
            rows: reach(&window.rows, size[2]),
            cols: reach(&window.cols, size[3]),
        }
    }

    /// The positions of `inputs` (along one side) that an output reads through kernel offset
    /// `offset`, among `outputs` outputs: the first input, its output, and how many (every
    /// `stride`-th input, consecutive outputs); `None` when none.
    pub fn through(
        &self,
        inputs: &Range<i64>,
        offset: i64,
        outputs: i64,
    ) -> Option<(i64, i64, i64)> {
        let pairs: Vec<(i64, i64)> = inputs
            .clone()
            .filter(|i| (i + self.padding - offset).rem_euclid(self.stride) == 0)
            .map(|i| (i, (i + self.padding - offset).div_euclid(self.stride)))
            .filter(|&(_, o)| (0..outputs).contains(&o))
            .collect();
        pairs.first().map(|&(i, o)| (i, o, pairs.len() as i64))
    }

    /// The pixels of the `[N, C, H, W]` map `input` that `outputs` read, clipped to it, with
    /// the zero padding the clipped sides need (`[left, right, top, bottom]`, the order of
    /// `constant_pad_nd`).
    pub fn read(&self, outputs: &Window, input: &Tensor) -> (Window, [i64; 4]) {
        let read = |r: &Range<i64>, size: i64| {
            let first = r.start * self.stride - self.padding;
            let last = (r.end - 1) * self.stride - self.padding + self.kernel;
            (
                first.max(0)..last.min(size),
                [(-first).max(0), (last - size).max(0)],
            )
        };
        let size = input.size();
        let (rows, [top, bottom]) = read(&outputs.rows, size[2]);
        let (cols, [left, right]) = read(&outputs.cols, size[3]);
        (Window { rows, cols }, [left, right, top, bottom])
    }
}

/// Values of a batch under a search that moves one window at a time: a candidate differs from
/// the current best points inside one window only, so a network may recompute only what that
/// window reaches ([`super::folded`]). Values are whatever the network or objective gives.
pub trait WindowSearch {
    /// Values of `x`, which become the best points that later windows change.
    fn reset(&mut self, x: &Tensor) -> Tensor;
    /// Values of `candidate`: the best points with `window` changed.
    fn window(&mut self, candidate: &Tensor, window: &Window) -> Tensor;
    /// Where `improved` (`[N]`, bool), the last candidate becomes the best point.
    fn accept(&mut self, improved: &Tensor);
}

/// A search that evaluates every candidate whole, for any function of the batch.
pub struct Whole<F>(pub F);

impl<F: Fn(&Tensor) -> Tensor> WindowSearch for Whole<F> {
    fn reset(&mut self, x: &Tensor) -> Tensor {
        (self.0)(x)
    }

    fn window(&mut self, candidate: &Tensor, _window: &Window) -> Tensor {
        (self.0)(candidate)
    }

    fn accept(&mut self, _improved: &Tensor) {}
}

/// A search's values mapped by a function of them (a classifier's logits to a loss).
pub struct Mapped<S, F> {
    pub search: S,
    pub map: F,
}

impl<S: WindowSearch, F: Fn(&Tensor) -> Tensor> WindowSearch for Mapped<S, F> {
    fn reset(&mut self, x: &Tensor) -> Tensor {
        (self.map)(&self.search.reset(x))
    }

    fn window(&mut self, candidate: &Tensor, window: &Window) -> Tensor {
        (self.map)(&self.search.window(candidate, window))
    }

    fn accept(&mut self, improved: &Tensor) {
        self.search.accept(improved);
    }
}

impl<S: WindowSearch + ?Sized> WindowSearch for Box<S> {
    fn reset(&mut self, x: &Tensor) -> Tensor {
        (**self).reset(x)
    }

    fn window(&mut self, candidate: &Tensor, window: &Window) -> Tensor {
        (**self).window(candidate, window)
    }

    fn accept(&mut self, improved: &Tensor) {
        (**self).accept(improved);
    }
}

/// A network that maps pixels to logits in evaluation mode: what attacks and evaluations take.
pub trait Classifier: ModuleT {
    /// Its logits under a window search, computed incrementally where the network knows how;
    /// `None`: every candidate is evaluated whole.
    fn window_search(&self) -> Option<Box<dyn WindowSearch + '_>> {
        None
    }
}

/// A classifier built from a closure with tch's `func_t`.
impl Classifier for tch::nn::FuncT<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    const STENCIL: Stencil = Stencil {
        kernel: 4,
        stride: 2,
        padding: 1,
    };

    /// The outputs of k4s2p1 that read a pixel, by brute force over each output's inputs.
    fn brute(r: Range<i64>, size: i64) -> Range<i64> {
        let outputs = (size + 2 - 4) / 2 + 1;
        let read: Vec<i64> = (0..outputs)
            .filter(|o| (2 * o - 1..2 * o + 3).any(|i| r.contains(&i)))
            .collect();
        read[0]..read[read.len() - 1] + 1
    }

    #[test]
    fn a_window_reaches_exactly_the_outputs_that_read_it() {
        for size in [28, 14, 7, 32, 16, 8] {
            let outputs = (size + 2 - 4) / 2 + 1;
            for start in 0..size {
                for end in start + 1..=size {
                    let w = Window {
                        rows: start..end,
                        cols: 0..size,
                    };
                    let map = Tensor::zeros([1, 1, outputs, outputs], (Kind::Float, Device::Cpu));
                    let reached = STENCIL.reached(&w, &map);
                    assert_eq!(
                        reached.rows,
                        brute(start..end, size),
                        "{size}: {start}..{end}"
                    );
                    assert_eq!(reached.cols, 0..outputs);
                }
            }
        }
    }

    #[test]
    fn the_whole_window_covers_the_image() {
        let image = Tensor::zeros([2, 3, 5, 7], (Kind::Float, Device::Cpu));
        assert_eq!(
            Window::whole(&image),
            Window {
                rows: 0..5,
                cols: 0..7
            }
        );
    }
}
