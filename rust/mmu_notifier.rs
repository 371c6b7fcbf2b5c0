// SPDX-License-Identifier: GPL-2.0
//! MMU notifiers: an object (a VM) hears about changes to a process's
//! address space (munmap, mprotect, migration, reclaim, exit).
//!
//! The 7.3 `kernel` crate has no binding. [`MmuNotifier`] is a field of
//! the object, which implements [`MmuNotifierOps`]; [`impl_has_mmu_notifier`]
//! tells the callbacks where the field is, as `impl_has_hr_timer!` does.

use core::{
    marker::PhantomData,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{bindings, ffi, mm::Mm, prelude::*, sync::aref::ARef, types::Opaque};

/// What the owner of an [`MmuNotifier`] does on each event. Called from
/// the mm core, in the context of the task changing the mapping.
pub trait MmuNotifierOps: Sync + Sized {
    /// `[start, end)` of the address space is about to change. With
    /// `blockable` false the callback must not sleep (`EAGAIN` to retry).
    fn invalidate_range_start(&self, start: u64, end: u64, blockable: bool) -> Result;
    /// The change of the last `invalidate_range_start` is done.
    fn invalidate_range_end(&self, start: u64, end: u64);
    /// The address space is being torn down.
    fn release(&self);
}

/// Where the [`MmuNotifier<Self>`] field of `Self` is.
///
/// # Safety
///
/// `OFFSET` is the byte offset of a field of type `MmuNotifier<Self>` in
/// `Self`; use [`impl_has_mmu_notifier`].
pub unsafe trait HasMmuNotifier: MmuNotifierOps {
    /// Offset of the field.
    const OFFSET: usize;
}

/// Implements [`HasMmuNotifier`] for `$t` with its field `$field`.
#[macro_export]
macro_rules! impl_has_mmu_notifier {
    ($t:ty, $field:ident) => {
        // SAFETY: the offset of the named `MmuNotifier<$t>` field.
        unsafe impl $crate::ext::mmu_notifier::HasMmuNotifier for $t {
            const OFFSET: usize = core::mem::offset_of!($t, $field);
        }
    };
}

/// An `mmu_notifier` embedded in a `T`, registered on `mm` between
/// [`MmuNotifier::register`] and [`MmuNotifier::unregister`] (or drop).
/// `repr(C)`: the C struct is at offset 0, so `T::OFFSET` finds it.
#[repr(C)]
#[pin_data(PinnedDrop)]
pub struct MmuNotifier<T: HasMmuNotifier> {
    #[pin]
    inner: Opaque<bindings::mmu_notifier>,
    mm: ARef<Mm>,
    registered: AtomicBool,
    _owner: PhantomData<T>,
}

// SAFETY: the C struct is only touched by the mm core (under its own
// locking) and by register/unregister; the rest is Send + Sync.
unsafe impl<T: HasMmuNotifier> Send for MmuNotifier<T> {}
// SAFETY: as above.
unsafe impl<T: HasMmuNotifier> Sync for MmuNotifier<T> {}

impl<T: HasMmuNotifier> MmuNotifier<T> {
    const OPS: bindings::mmu_notifier_ops = bindings::mmu_notifier_ops {
        invalidate_range_start: Some(Self::start),
        invalidate_range_end: Some(Self::end),
        release: Some(Self::release),
        ..pin_init::zeroed()
    };

    /// An unregistered notifier for `mm`.
    pub fn new(mm: ARef<Mm>) -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- Opaque::ffi_init(|slot: *mut bindings::mmu_notifier| {
                let mut n: bindings::mmu_notifier = pin_init::zeroed();
                n.ops = &Self::OPS;
                // SAFETY: `slot` is valid for writes (initializer contract).
                unsafe { slot.write(n) };
            }),
            mm,
            registered: AtomicBool::new(false),
            _owner: PhantomData,
        })
    }

    /// The address space it watches.
    pub fn mm(&self) -> &Mm {
        &self.mm
    }

    /// Whether the current task runs in that address space.
    pub fn is_current_mm(&self) -> bool {
        kernel::current!()
            .mm()
            .is_some_and(|m| m.as_raw() == self.mm.as_raw())
    }

    /// Starts the callbacks, which run until [`MmuNotifier::unregister`]
    /// (at the latest when the notifier is dropped, before the rest of its
    /// owner: keep `unregister` first in the owner's drop).
    ///
    /// `&self` suffices: a `MmuNotifier` is `!Unpin` and only made through
    /// `PinInit`, so it never moves.
    pub fn register(&self) -> Result {
        // SAFETY: `inner` is initialised and pinned; `mm` is live (we hold
        // a reference). Unregistered before the memory goes away (`Drop`).
        kernel::error::to_result(unsafe {
            bindings::mmu_notifier_register(self.inner.get(), self.mm.as_raw())
        })?;
        self.registered.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Stops the callbacks and waits for running ones to finish.
    pub fn unregister(&self) {
        if self.registered.swap(false, Ordering::SeqCst) {
            // SAFETY: registered on `mm` in `register`; after this no
            // callback runs.
            unsafe { bindings::mmu_notifier_unregister(self.inner.get(), self.mm.as_raw()) };
        }
    }

    /// The owner of notifier `mn`.
    ///
    /// # Safety
    ///
    /// `mn` is the `inner` of a registered `MmuNotifier<T>`.
    unsafe fn owner<'a>(mn: *mut bindings::mmu_notifier) -> &'a T {
        // SAFETY: `inner` is at offset 0 of the `MmuNotifier<T>` (repr(C)),
        // which is at `T::OFFSET` in a live `T` (registered only while it
        // lives; see `register`).
        unsafe { &*mn.cast::<u8>().sub(T::OFFSET).cast::<T>() }
    }

    /// `invalidate_range_start`.
    ///
    /// # Safety
    ///
    /// Called by the mm core with our registered notifier and a valid range.
    unsafe extern "C" fn start(
        mn: *mut bindings::mmu_notifier,
        range: *const bindings::mmu_notifier_range,
    ) -> ffi::c_int {
        // SAFETY: called by the mm core for our registered notifier.
        let owner = unsafe { Self::owner(mn) };
        // SAFETY: the range is valid for the call's duration.
        let range = unsafe { &*range };
        let blockable = range.flags & bindings::MMU_NOTIFIER_RANGE_BLOCKABLE != 0;
        match owner.invalidate_range_start(range.start as u64, range.end as u64, blockable) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// `invalidate_range_end`.
    ///
    /// # Safety
    ///
    /// As for `start`.
    unsafe extern "C" fn end(
        mn: *mut bindings::mmu_notifier,
        range: *const bindings::mmu_notifier_range,
    ) {
        // SAFETY: as in `start`.
        let (owner, range) = unsafe { (Self::owner(mn), &*range) };
        owner.invalidate_range_end(range.start as u64, range.end as u64);
    }

    /// `release`.
    ///
    /// # Safety
    ///
    /// Called by the mm core with our registered notifier.
    unsafe extern "C" fn release(mn: *mut bindings::mmu_notifier, _mm: *mut bindings::mm_struct) {
        // SAFETY: as in `start`.
        unsafe { Self::owner(mn) }.release();
    }
}

#[pinned_drop]
impl<T: HasMmuNotifier> PinnedDrop for MmuNotifier<T> {
    fn drop(self: Pin<&mut Self>) {
        self.unregister();
    }
}
