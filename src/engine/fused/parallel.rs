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

/// `a · b` into a new row-major buffer.
pub fn product(a: Matrix, b: Matrix, op: &str) -> Result<Vec<f32>> {
    Ok(products(&[(a, b)], op)?.pop().unwrap_or_default())
}

/// One piece of work of [`products`].
enum Task {
    /// Rows `rows` of product `product`'s output, in buffer `buffer`.
    Band {
        product: usize,
        buffer: usize,
        rows: Range<usize>,
    },
    /// Terms `terms` of product `product`'s sum, into partial buffer `part`.
    Part {
        product: usize,
        terms: Range<usize>,
        part: usize,
    },
}

/// Every `a · b` of `list` into a new row-major buffer each, computed together: each product cut
/// into tasks, and all the tasks shared by the threads.
pub fn products(list: &[(Matrix, Matrix)], op: &str) -> Result<Vec<Vec<f32>>> {
    for (a, b) in list {
        if a.cols != b.rows || a.cols == 0 {
            bail!(
                "{op}: cannot multiply [{}, {}] by [{}, {}]",
                a.rows,
                a.cols,
                b.rows,
                b.cols
            );
        }
    }
    let threads = threads();
    let work: usize = list.iter().map(|(a, b)| a.rows * a.cols * b.cols).sum();
    let share = threads > 1 && work >= PARALLEL_PRODUCT;
    // Every task writes its own buffer region: a band of a product's output, or a whole partial
    // output (a part of its sum).
    let mut tasks = Vec::new();
    let mut buffers: Vec<Vec<f32>> = Vec::new();
    // Per product: the buffers that hold it; more than one are parts to add.
    let mut holders: Vec<Vec<usize>> = Vec::new();
    for (product, (a, b)) in list.iter().enumerate() {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        if share && m * n < WIDE_OUTPUT && k >= 2 * MIN_SHARE_OF_SUM {
            let parts = threads.min(k / MIN_SHARE_OF_SUM);
            let mut held = Vec::new();
            for i in 0..parts {
                tasks.push(Task::Part {
                    product,
                    terms: k * i / parts..k * (i + 1) / parts,
                    part: buffers.len(),
                });
                held.push(buffers.len());
                buffers.push(Vec::with_capacity(m * n));
            }
            holders.push(held);
        } else {
            let bands = if share { threads.min(m).max(1) } else { 1 };
            tasks.extend((0..bands).map(|i| Task::Band {
                product,
                buffer: buffers.len(),
                rows: m * i / bands..m * (i + 1) / bands,
            }));
            holders.push(vec![buffers.len()]);
            buffers.push(Vec::with_capacity(m * n));
        }
    }
    {
        let targets: Vec<Shared<f32>> = buffers
            .iter_mut()
            .map(|buffer| Shared::new(buffer.spare_capacity_mut()))
            .collect();
        in_parallel(tasks.len(), share, |i| match &tasks[i] {
            Task::Band {
                product,
                buffer,
                rows,
            } => {
                let (a, b) = list[*product];
                let n = b.cols;
                // SAFETY: each band's rows belong to one task only and lie inside the buffer.
                let dst = unsafe { targets[*buffer].ptr(rows.start * n..rows.end * n) };
                // SAFETY: `dst` has room for the band's rows × n values.
                unsafe { gemm_to(a.rows(rows.clone()), b, dst) };
            }
            Task::Part {
                product,
                terms,
                part,
            } => {
                let (a, b) = list[*product];
                // SAFETY: each part's buffer belongs to one task only.
                let dst = unsafe { targets[*part].ptr(0..a.rows * b.cols) };
                // SAFETY: `dst` has room for the whole m × n output.
                unsafe { gemm_to(a.cols(terms.clone()), b.rows(terms.clone()), dst) };
            }
        });
    }
    for buffer in &mut buffers {
        // SAFETY: the tasks wrote every element of every buffer: the bands of a product cover
        // all its rows, and a part's task writes its whole buffer.
        unsafe { buffer.set_len(buffer.capacity()) };
    }
    let mut buffers: Vec<Option<Vec<f32>>> = buffers.into_iter().map(Some).collect();
    Ok(holders
        .iter()
        .map(|held| {
            // The parts of a sum, added in order.
            let mut parts = held.iter().filter_map(|&i| buffers[i].take());
            let mut output = parts.next().unwrap_or_default();
            for part in parts {
                for (o, p) in output.iter_mut().zip(&part) {
                    *o += p;
                }
            }
            output
        })
        .collect())
}

/// `a · b` written to `dst`, row-major with row stride `b.cols`, on this thread.
///
/// # Safety
/// `dst` must have room for `a.rows × b.cols` values, and no one else may use them meanwhile.
unsafe fn gemm_to(a: Matrix, b: Matrix, dst: *mut f32) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && k > 0, "gemm_to: shapes");
    // SAFETY: `a` and `b` lie inside their storage (checked in `Matrix::new`; a band or part of
    // one lies inside it too) with the strides given; `dst` is the caller's. With `read_dst`
    // false, gemm writes every destination element and reads none.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
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
    /// Over a possibly uninitialised buffer: its parts are written before they are read.
    pub fn new(buffer: &'a mut [std::mem::MaybeUninit<T>]) -> Self {
        Self {
            ptr: buffer.as_mut_ptr().cast(),
            len: buffer.len(),
            _buffer: PhantomData,
        }
    }

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
