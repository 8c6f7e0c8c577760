//! Matrix products through the `gemm` crate and element-wise passes, shared among candle's CPU
//! threads when there is enough work.
//!
//! The threads are candle's barrier pool: they spin for a while after each task before sleeping,
//! so an epoch's dozen short parallel steps do not each wait for a sleeping thread to wake (which
//! made two threads no faster than one in the middle of `hwbench scale`'s ladder). A product is
//! cut into tasks — bands of output rows when the output is large, parts of the sum when it is
//! small and the sum long (a weight's gradient: few outputs, one term per row) — and several
//! products can be computed together, their tasks shared by all threads.

use std::marker::PhantomData;
use std::ops::Range;

use candle_core::{CpuStorage, Layout, Result, bail};

use super::isa;

/// Below this many multiply–adds a product runs whole on one thread (the course's model is far
/// below it).
const PARALLEL_PRODUCT: usize = 1 << 20;

/// Outputs from this many elements up are cut into bands of rows; smaller ones along the sum.
const WIDE_OUTPUT: usize = 1 << 15;

/// A part of a sum cut among threads has at least this many terms.
const MIN_SHARE_OF_SUM: usize = 256;

/// Below this many elements an element-wise pass runs on one thread.
const PARALLEL_ELEMENTS: usize = 1 << 16;

/// Elements per task of a parallel element-wise pass: enough for its loop to vectorise.
pub const CHUNK: usize = 1 << 13;

/// The threads candle may use.
pub fn threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// A matrix in a tensor's storage: its data from the first element, its shape and strides.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    pub fn new(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<Self> {
        let CpuStorage::F32(data) = storage else {
            bail!("{op}: only f32 is supported")
        };
        let (rows, cols) = match layout.shape().dims() {
            &[rows, cols] => (rows, cols),
            dims => bail!("{op}: expected a matrix, got shape {dims:?}"),
        };
        let &[row_stride, col_stride] = layout.stride() else {
            bail!("{op}: expected a matrix")
        };
        let data = &data[layout.start_offset()..];
        // The last element must be inside the storage.
        if rows > 0 && cols > 0 && (rows - 1) * row_stride + (cols - 1) * col_stride >= data.len() {
            bail!("{op}: the layout points outside the tensor's storage");
        }
        Ok(Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A row-major `rows × cols` matrix in `data`.
    pub fn of(data: &'a [f32], rows: usize, cols: usize, op: &str) -> Result<Self> {
        if data.len() != rows * cols {
            bail!("{op}: {} values for a [{rows}, {cols}] matrix", data.len());
        }
        Ok(Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        })
    }

    /// The transpose when `transpose`, without moving any data.
    pub fn transposed_if(self, transpose: bool) -> Self {
        if !transpose {
            return self;
        }
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Rows `rows` of this matrix (inside it).
    fn rows(self, rows: Range<usize>) -> Self {
        Self {
            data: &self.data[rows.start * self.row_stride..],
            rows: rows.len(),
            ..self
        }
    }

    /// Columns `cols` of this matrix (inside it).
    fn cols(self, cols: Range<usize>) -> Self {
        Self {
            data: &self.data[cols.start * self.col_stride..],
            cols: cols.len(),
            ..self
        }
    }
}

/// A product to compute: `a · b` into `out`, row-major (`a.rows × b.cols` values).
pub struct Product<'a, 'o> {
    pub a: Matrix<'a>,
    pub b: Matrix<'a>,
    pub out: &'o mut [f32],
}

/// One piece of work of [`products`].
enum Task {
    /// Rows `rows` of product `product`'s output.
    Band { product: usize, rows: Range<usize> },
    /// Terms `terms` of product `product`'s sum, into its output (`part` None) or into partial
    /// buffer `part`, added to the output afterwards.
    Part {
        product: usize,
        terms: Range<usize>,
        part: Option<usize>,
    },
}

/// Every product of `list`, computed together: each product cut into tasks, and all the tasks
/// shared by the threads. Small work runs here, into the outputs, without allocating.
pub fn products(list: &mut [Product], op: &str) -> Result<()> {
    for Product { a, b, out } in list.iter() {
        if a.cols != b.rows || a.cols == 0 || out.len() != a.rows * b.cols {
            bail!(
                "{op}: cannot multiply [{}, {}] by [{}, {}] into {} values",
                a.rows,
                a.cols,
                b.rows,
                b.cols,
                out.len()
            );
        }
    }
    // The work first: reading the thread count can cost more than a small product (candle
    // reads the environment, and without a setting there, the cgroup's CPU quota).
    let work: usize = list.iter().map(|p| p.a.rows * p.a.cols * p.b.cols).sum();
    let threads = if work < PARALLEL_PRODUCT {
        1
    } else {
        threads()
    };
    if threads == 1 {
        for Product { a, b, out } in list.iter_mut() {
            // SAFETY: `out` holds a.rows × b.cols values (checked above) and is ours.
            unsafe { gemm_to(*a, *b, out.as_mut_ptr()) };
        }
        return Ok(());
    }
    // Every task writes its own region: a band of a product's output, a whole output (the
    // first part of a sum) or a partial buffer (another part).
    let mut tasks = Vec::new();
    let mut partial: Vec<Vec<f32>> = Vec::new();
    // Per product: the partial buffers to add to its output, in order.
    let mut to_add: Vec<Vec<usize>> = Vec::new();
    for (product, Product { a, b, .. }) in list.iter().enumerate() {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        let mut added = Vec::new();
        if m * n < WIDE_OUTPUT && k >= 2 * MIN_SHARE_OF_SUM {
            let parts = threads.min(k / MIN_SHARE_OF_SUM);
            for i in 0..parts {
                let part = (i > 0).then(|| {
                    partial.push(vec![0f32; m * n]);
                    partial.len() - 1
                });
                added.extend(part);
                tasks.push(Task::Part {
                    product,
                    terms: k * i / parts..k * (i + 1) / parts,
                    part,
                });
            }
        } else {
            let bands = threads.min(m).max(1);
            tasks.extend((0..bands).map(|i| Task::Band {
                product,
                rows: m * i / bands..m * (i + 1) / bands,
            }));
        }
        to_add.push(added);
    }
    {
        let (operands, outputs): (Vec<_>, Vec<_>) = list
            .iter_mut()
            .map(|p| ((p.a, p.b), Shared::of(p.out)))
            .unzip();
        let partials: Vec<Shared<f32>> = partial.iter_mut().map(|p| Shared::of(p)).collect();
        in_parallel(tasks.len(), true, |i| match &tasks[i] {
            Task::Band { product, rows } => {
                let (a, b) = operands[*product];
                let n = b.cols;
                // SAFETY: each band's rows belong to one task only and lie inside the output.
                let dst = unsafe { outputs[*product].ptr(rows.start * n..rows.end * n) };
                // SAFETY: `dst` has room for the band's rows × n values.
                unsafe { gemm_to(a.rows(rows.clone()), b, dst) };
            }
            Task::Part {
                product,
                terms,
                part,
            } => {
                let (a, b) = operands[*product];
                let target = part.map_or(&outputs[*product], |p| &partials[p]);
                // SAFETY: each output or partial buffer written by a part belongs to its task.
                let dst = unsafe { target.ptr(0..a.rows * b.cols) };
                // SAFETY: `dst` has room for the whole m × n output.
                unsafe { gemm_to(a.cols(terms.clone()), b.rows(terms.clone()), dst) };
            }
        });
    }
    // The parts of a sum, added in order.
    for (Product { out, .. }, added) in list.iter_mut().zip(&to_add) {
        for &part in added {
            for (o, p) in out.iter_mut().zip(&partial[part]) {
                *o += p;
            }
        }
    }
    Ok(())
}

/// `a · b` written to `dst`, row-major with row stride `b.cols`, on this thread.
///
/// # Safety
/// `dst` must have room for `a.rows × b.cols` values, and no one else may use them meanwhile.
unsafe fn gemm_to(a: Matrix, b: Matrix, dst: *mut f32) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && k > 0, "gemm_to: shapes");
    // SAFETY: `a` and `b` lie inside their storage (checked in `Matrix::new`; a band or part of
    // one lies inside it too) with the strides given; `dst` is the caller's.
    unsafe {
        isa::gemm(
            (m, k, n),
            dst,
            a.data.as_ptr(),
            (a.col_stride as isize, a.row_stride as isize),
            b.data.as_ptr(),
            (b.col_stride as isize, b.row_stride as isize),
        );
    }
}

/// Whether an epoch of the fused model (`rows` rows, `inputs` features, `hidden` units, `classes`
/// classes) hands any step to other threads: one of its groups of products (as `FusedEpoch::step`
/// makes them) reaches [`PARALLEL_PRODUCT`] multiply–adds, or one of its element-wise passes
/// [`PARALLEL_ELEMENTS`] elements. Where none does, every CPU column runs the same
/// single-threaded epoch, whatever its thread count.
pub fn shares_epoch(rows: usize, inputs: usize, hidden: usize, classes: usize) -> bool {
    let with_bias = inputs + 1;
    let products = [
        rows * with_bias * hidden,   // x · fc1, and xᵀ · d hidden
        rows * hidden * classes,     // hidden · fc2
        2 * rows * hidden * classes, // d scores · fc2ᵀ with hiddenᵀ · d scores
    ];
    let passes = [rows * hidden, rows * classes, with_bias * hidden];
    products.iter().any(|&work| work >= PARALLEL_PRODUCT)
        || passes.iter().any(|&elements| elements >= PARALLEL_ELEMENTS)
}

/// Runs `task(i)` for every i below `count`: on candle's barrier pool when `share`, else here.
fn in_parallel(count: usize, share: bool, task: impl Fn(usize) + Sync) {
    if share && count > 1 {
        candle_core::utils::barrier_pool().execute_chunked(count, |range| range.for_each(&task));
    } else {
        (0..count).for_each(task);
    }
}

/// `f` over consecutive ranges of `0..len` (each at most `chunk` long), on the threads when
/// there are enough elements.
pub fn for_ranges(len: usize, chunk: usize, f: impl Fn(Range<usize>) + Sync) {
    let chunk = chunk.max(1);
    for_tasks(len.div_ceil(chunk), len, |i| {
        f(i * chunk..len.min((i + 1) * chunk))
    });
}

/// `task(i)` for every i below `count`, on the threads when the tasks touch enough `elements`
/// in all.
pub fn for_tasks(count: usize, elements: usize, task: impl Fn(usize) + Sync) {
    in_parallel(count, elements >= PARALLEL_ELEMENTS && threads() > 1, task);
}

/// A buffer that several tasks write, each to its own part.
pub struct Shared<'a, T> {
    ptr: *mut T,
    len: usize,
    _buffer: PhantomData<&'a mut [T]>,
}

// SAFETY: tasks only reach the buffer through `slice`, whose caller promises disjoint ranges.
unsafe impl<T: Send> Sync for Shared<'_, T> {}
unsafe impl<T: Send> Send for Shared<'_, T> {}

impl<'a, T> Shared<'a, T> {
    /// Over an initialised buffer.
    pub fn of(buffer: &'a mut [T]) -> Self {
        Self {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
            _buffer: PhantomData,
        }
    }

    /// Where elements `range` of the buffer start (the range checked to be inside it).
    ///
    /// # Safety
    /// No one else may use those elements while the pointer is in use.
    pub unsafe fn ptr(&self, range: Range<usize>) -> *mut T {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "Shared: out of range"
        );
        // SAFETY: inside the buffer (checked above).
        unsafe { self.ptr.add(range.start) }
    }

    /// Elements `range` of an initialised buffer (one made with [`Shared::of`]).
    ///
    /// # Safety
    /// No two live slices may overlap.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, range: Range<usize>) -> &mut [T] {
        let len = range.len();
        // SAFETY: inside the buffer (checked by `ptr`), initialised (`of`), and disjoint from
        // every other live slice, as the caller promised.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(range), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_course_model_runs_on_one_thread_and_the_ladder_shares_from_32_inputs_on() {
        // The course's model: 120 rows, 4 features, 10 hidden units, 3 classes.
        assert!(!shares_epoch(120, 4, 10, 3));
        // scale's ladder: 16:48:16:384 still whole (384 · 17 · 48 = 313 k multiply–adds),
        // 32:96:24:768 shared (768 · 33 · 96 = 2.4 M).
        assert!(!shares_epoch(384, 16, 48, 16));
        assert!(shares_epoch(768, 32, 96, 24));
        // Many rows of a narrow model: the element-wise pass over the hidden layer is shared.
        assert!(shares_epoch(8192, 4, 10, 3));
    }
}
