// SPDX-License-Identifier: GPL-2.0
//! A misc device with a fixed minor number.
//!
//! `kernel::miscdevice` always asks for a dynamic minor; `/dev/kvm` has the
//! fixed minor 232 (`KVM_MINOR`, Documentation/admin-guide/devices.txt),
//! which the `char-major-10-232` module alias and existing udev setups rely
//! on. The device's ioctls go through [`FileOps`] with `Ptr = ()`: misc_open
//! leaves the `miscdevice` pointer in `private_data`, which `()` ignores.

use super::{
    bindings as rb,
    file::{vtable, FileOps},
};
use kernel::{bindings, error::to_result, ffi, prelude::*, types::Opaque};

/// A registered misc device; deregistered on drop.
#[pin_data(PinnedDrop)]
pub struct Registration {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
}

// SAFETY: misc_deregister may run on any thread.
unsafe impl Send for Registration {}
// SAFETY: no `&self` method touches the device.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers `/dev/<name>` as misc device `minor` with `T`'s operations.
    pub fn register<T: FileOps<Ptr = ()>>(
        minor: u32,
        name: &'static CStr,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut dev: bindings::miscdevice = pin_init::zeroed();
                dev.minor = minor as ffi::c_int;
                dev.name = name.as_char_ptr();
                dev.fops = vtable::<T>();
                // SAFETY: `slot` is valid for writes (initializer contract).
                unsafe { slot.write(dev) };
                // SAFETY: `slot` holds an initialised miscdevice that stays
                // pinned until `drop` deregisters it.
                to_result(unsafe { rb::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Registration {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered in `register` (type invariant).
        unsafe { rb::misc_deregister(self.inner.get()) };
    }
}
