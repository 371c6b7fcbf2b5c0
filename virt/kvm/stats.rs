// SPDX-License-Identifier: GPL-2.0
//! Statistics: the counters of a VM and of each vCPU, their descriptor
//! tables, and the binary stats file (KVM_GET_STATS_FD) laid out as
//! upstream's virt/kvm/binary_stats.c: header, id string, descriptors,
//! data. The same counters feed debugfs (`virt::debugfs`).
//!
//! A statistics block is declared with [`stats_block!`]: a `repr(C)`
//! struct of [`Stat`]s (and [`LogHist`]s) whose descriptor table is
//! generated from the field list, so no descriptor is written by hand.

use crate::ext::{file::FileOps, uapi};
use core::{
    mem::size_of,
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{fs::File, prelude::*, sync::Arc, types::ForeignOwnable, uaccess::UserSliceWriter};

/// `KVM_STATS_NAME_SIZE`: names and the id string are this long.
pub(crate) const NAME_SIZE: usize = 48;
/// Buckets of the halt-polling histograms (`HALT_POLL_HIST_COUNT`).
pub(crate) const HALT_POLL_HIST_COUNT: usize = 32;

/// One counter (any context; relaxed atomics).
#[repr(transparent)]
pub(crate) struct Stat(AtomicU64);

impl Stat {
    pub(crate) const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds 1.
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the value (instant counters and booleans).
    pub(crate) fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The value.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A logarithmic histogram: bucket `i` counts values with `fls64(v) == i`
/// (upstream's kvm_stats_log_hist_update()).
#[repr(transparent)]
pub(crate) struct LogHist<const N: usize>([Stat; N]);

impl<const N: usize> LogHist<N> {
    pub(crate) const fn new() -> Self {
        Self([const { Stat::new() }; N])
    }

    /// Counts `value`.
    pub(crate) fn record(&self, value: u64) {
        let bucket = (64 - value.leading_zeros()) as usize;
        if let Some(s) = self.0.get(bucket.min(N - 1)) {
            s.inc();
        }
    }

    fn buckets(&self) -> &[Stat] {
        &self.0
    }
}

/// What a statistic is (upstream's `STATS_DESC_*` families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Cumulative counter (`STATS_DESC_COUNTER`).
    Counter,
    /// Instantaneous counter (`STATS_DESC_ICOUNTER`).
    ICounter,
    /// Peak counter (`STATS_DESC_PCOUNTER`).
    PCounter,
    /// Instantaneous boolean (`STATS_DESC_IBOOLEAN`).
    IBoolean,
    /// Cumulative time in ns (`STATS_DESC_TIME_NSEC`).
    TimeNs,
    /// Logarithmic histogram of times in ns (`STATS_DESC_LOGHIST_TIME_NSEC`).
    LogHistTimeNs,
}

impl Kind {
    /// `kvm_stats_desc.flags`.
    const fn flags(self) -> u32 {
        let (ty, unit) = match self {
            Kind::Counter => (uapi::KVM_STATS_TYPE_CUMULATIVE, uapi::KVM_STATS_UNIT_NONE),
            Kind::ICounter => (uapi::KVM_STATS_TYPE_INSTANT, uapi::KVM_STATS_UNIT_NONE),
            Kind::PCounter => (uapi::KVM_STATS_TYPE_PEAK, uapi::KVM_STATS_UNIT_NONE),
            Kind::IBoolean => (uapi::KVM_STATS_TYPE_INSTANT, uapi::KVM_STATS_UNIT_BOOLEAN),
            Kind::TimeNs => (
                uapi::KVM_STATS_TYPE_CUMULATIVE,
                uapi::KVM_STATS_UNIT_SECONDS,
            ),
            Kind::LogHistTimeNs => (uapi::KVM_STATS_TYPE_LOG_HIST, uapi::KVM_STATS_UNIT_SECONDS),
        };
        ty | unit | uapi::KVM_STATS_BASE_POW10
    }

    /// `kvm_stats_desc.exponent`.
    const fn exponent(self) -> i16 {
        match self {
            Kind::TimeNs | Kind::LogHistTimeNs => -9,
            _ => 0,
        }
    }

    /// Whether a debugfs write of 0 clears it (upstream's
    /// kvm_stats_debugfs_mode(): cumulative and peak counters are 0644,
    /// the others 0444).
    pub(crate) const fn clearable(self) -> bool {
        matches!(self, Kind::Counter | Kind::PCounter | Kind::TimeNs)
    }
}

/// One descriptor of a statistics block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StatDesc {
    /// Upstream's name.
    pub(crate) name: &'static CStr,
    /// What it is.
    pub(crate) kind: Kind,
    /// Offset in the data block, in bytes.
    pub(crate) offset: usize,
    /// Number of u64 values (buckets of a histogram, else 1).
    pub(crate) len: usize,
}

/// A block of statistics with a generated descriptor table.
pub(crate) trait StatsBlock: Send + Sync {
    /// The descriptors, in data order.
    const DESCS: &'static [StatDesc];
    /// Number of u64 values of the data block.
    const VALUES: usize;
    /// Copies the values, in data order, into `out` (at least `VALUES` long).
    fn values(&self, out: &mut [u64]);
    /// The (first) counter of the statistic at data offset `offset`
    /// (debugfs shows and clears that one, as upstream).
    fn stat_at(&self, offset: usize) -> Option<&Stat>;
}

/// Appends the values of a counter or histogram to `out` at `*i`.
pub(crate) trait StatValues {
    /// Number of u64 values.
    const LEN: usize;
    /// Copies them.
    fn copy_to(&self, out: &mut [u64], i: &mut usize);
    /// The first one.
    fn head(&self) -> &Stat;
}

impl StatValues for Stat {
    const LEN: usize = 1;
    fn copy_to(&self, out: &mut [u64], i: &mut usize) {
        if let Some(o) = out.get_mut(*i) {
            *o = self.get();
        }
        *i += 1;
    }
    fn head(&self) -> &Stat {
        self
    }
}

impl<const N: usize> StatValues for LogHist<N> {
    const LEN: usize = N;
    fn copy_to(&self, out: &mut [u64], i: &mut usize) {
        for b in self.buckets() {
            b.copy_to(out, i);
        }
    }
    fn head(&self) -> &Stat {
        &self.0[0]
    }
}

/// Declares a statistics block:
///
/// ```ignore
/// stats_block! {
///     /// A vCPU's statistics.
///     pub(crate) struct VcpuStats {
///         exits: Counter,
///         halt_wait_hist: LogHistTimeNs(LogHist<32>),
///     }
/// }
/// ```
///
/// Fields are in data order (upstream's `struct kvm_*_stat`); the
/// descriptors follow them unless an `order: [..]` list names every field
/// in descriptor order (upstream's `*_stats_desc[]` may differ from its
/// struct), checked at compile time.
#[macro_export]
macro_rules! stats_block {
    ($(#[$m:meta])* $vis:vis struct $name:ident {
        $($(#[$fm:meta])* $field:ident : $kind:ident $(($ty:ty))?),* $(,)?
    } $(order: [$($ord:ident),* $(,)?])?) => {
        $(#[$m])*
        #[repr(C)]
        $vis struct $name {
            $($(#[$fm])* pub(crate) $field: $crate::stats_block!(@ty $($ty)?),)*
        }

        impl $name {
            /// All counters at zero.
            pub(crate) const fn new() -> Self {
                Self { $($field: <$crate::stats_block!(@ty $($ty)?)>::new(),)* }
            }

            /// The descriptors in field (data) order.
            const FIELD_DESCS: &'static [$crate::virt::stats::StatDesc] = &[$(
                $crate::virt::stats::StatDesc {
                    name: kernel::c_str!(stringify!($field)),
                    kind: $crate::virt::stats::Kind::$kind,
                    offset: core::mem::offset_of!($name, $field),
                    len: <$crate::stats_block!(@ty $($ty)?) as $crate::virt::stats::StatValues>::LEN,
                },
            )*];
        }

        impl $crate::virt::stats::StatsBlock for $name {
            const DESCS: &'static [$crate::virt::stats::StatDesc] =
                $crate::stats_block!(@descs $name $($($ord),*)?);
            const VALUES: usize = 0 $(+ <$crate::stats_block!(@ty $($ty)?) as $crate::virt::stats::StatValues>::LEN)*;

            fn values(&self, out: &mut [u64]) {
                let mut i = 0;
                $($crate::virt::stats::StatValues::copy_to(&self.$field, out, &mut i);)*
            }

            fn stat_at(&self, offset: usize) -> Option<&$crate::virt::stats::Stat> {
                $(if offset == core::mem::offset_of!($name, $field) {
                    return Some($crate::virt::stats::StatValues::head(&self.$field));
                })*
                None
            }
        }
    };
    (@descs $name:ident) => { $name::FIELD_DESCS };
    (@descs $name:ident $($ord:ident),+) => {{
        const D: &[$crate::virt::stats::StatDesc] = &[$(
            $crate::virt::stats::find_desc($name::FIELD_DESCS, stringify!($ord)),
        )+];
        const _: () = assert!(D.len() == $name::FIELD_DESCS.len(), "order: must name every field");
        D
    }};
    (@ty) => { $crate::virt::stats::Stat };
    (@ty $ty:ty) => { $ty };
}

/// The descriptor named `name` (compile-time lookup for `order:`).
pub(crate) const fn find_desc(descs: &[StatDesc], name: &str) -> StatDesc {
    let mut i = 0;
    while i < descs.len() {
        if const_str_eq(descs[i].name.to_bytes(), name.as_bytes()) {
            return descs[i];
        }
        i += 1;
    }
    panic!("order: names a field the block does not have");
}

const fn const_str_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The binary stats file content for a block: header, id, descriptors,
/// data (upstream's layout, so the same reader code works).
fn stats_image<B: StatsBlock>(id: &[u8], block: &B) -> Result<KVec<u8>> {
    let header_size = size_of::<uapi::kvm_stats_header>();
    let desc_size = size_of::<uapi::kvm_stats_desc>() + NAME_SIZE;
    let num_desc = B::DESCS.len();
    let desc_offset = header_size + NAME_SIZE;
    let data_offset = desc_offset + num_desc * desc_size;
    let total = data_offset + B::VALUES * size_of::<u64>();
    let mut img = KVec::from_elem(0u8, total, GFP_KERNEL)?;
    let header = uapi::kvm_stats_header {
        flags: 0,
        name_size: NAME_SIZE as u32,
        num_desc: num_desc as u32,
        id_offset: header_size as u32,
        desc_offset: desc_offset as u32,
        data_offset: data_offset as u32,
    };
    put(&mut img, 0, kernel::transmute::AsBytes::as_bytes(&header));
    put(&mut img, header_size, &id[..id.len().min(NAME_SIZE - 1)]);
    for (i, d) in B::DESCS.iter().enumerate() {
        let at = desc_offset + i * desc_size;
        put(&mut img, at, &d.kind.flags().to_ne_bytes());
        put(&mut img, at + 4, &d.kind.exponent().to_ne_bytes());
        put(&mut img, at + 6, &(d.len as u16).to_ne_bytes());
        put(&mut img, at + 8, &(d.offset as u32).to_ne_bytes());
        // bucket_size (only linear histograms have one) stays 0.
        let name = d.name.to_bytes();
        put(&mut img, at + 16, &name[..name.len().min(NAME_SIZE - 1)]);
    }
    let mut values = KVec::from_elem(0u64, B::VALUES, GFP_KERNEL)?;
    block.values(&mut values);
    for (i, v) in values.iter().enumerate() {
        put(&mut img, data_offset + i * 8, &v.to_ne_bytes());
    }
    Ok(img)
}

/// Copies `bytes` into `img` at `at` (clamped).
fn put(img: &mut [u8], at: usize, bytes: &[u8]) {
    for (dst, src) in img.iter_mut().skip(at).zip(bytes) {
        *dst = *src;
    }
}

/// What a stats fd reads: a named block of someone who stays alive while
/// the fd is open (the VM or the vCPU, as upstream holds a VM reference).
pub(crate) trait StatsSource: Send + Sync {
    /// The statistics block type.
    type Block: StatsBlock;
    /// The id string ("kvm-TID" or "kvm-TID/vcpu-ID").
    fn stats_id(&self) -> &[u8];
    /// The counters.
    fn stats(&self) -> &Self::Block;
}

/// A stats fd of `T`.
pub(crate) struct StatsFile<T: StatsSource + 'static>(core::marker::PhantomData<T>);

#[vtable]
impl<T: StatsSource + 'static> FileOps for StatsFile<T> {
    type Ptr = Arc<T>;

    fn ioctl(
        _this: <Arc<T> as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        Err(ENOTTY)
    }

    fn read(
        this: <Arc<T> as ForeignOwnable>::Borrowed<'_>,
        out: &mut UserSliceWriter,
        pos: u64,
    ) -> Result<usize> {
        let img = stats_image(this.stats_id(), this.stats())?;
        let Some(rest) = usize::try_from(pos).ok().and_then(|p| img.get(p..)) else {
            return Ok(0);
        };
        let n = rest.len().min(out.len());
        out.write_slice(&rest[..n])?;
        Ok(n)
    }
}

/// KVM_GET_STATS_FD: a read-only fd with `src`'s statistics.
pub(crate) fn get_stats_fd<T: StatsSource + 'static>(src: Arc<T>) -> Result<isize> {
    let fd = crate::ext::file::new_anon_fd_mode::<StatsFile<T>>(
        c"kvm-stats",
        src,
        kernel::bindings::O_RDONLY,
    )?;
    Ok(fd as isize)
}
