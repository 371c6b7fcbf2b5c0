// SPDX-License-Identifier: GPL-2.0
//! CPU hotplug states: run a callback on every online CPU now and on every
//! CPU that comes online later, and its inverse on teardown.

use super::bindings as rb;
use core::marker::PhantomData;
use kernel::{bindings, error::to_result, ffi, prelude::*};

/// Per-CPU callbacks. Both run on `cpu` itself, in its hotplug thread: they
/// may sleep and cannot migrate.
pub trait Callbacks {
    /// `cpu` is (coming) online.
    fn online(cpu: u32) -> Result;
    /// `cpu` is going offline, or the state is being removed.
    fn offline(cpu: u32);
}

/// A dynamic `CPUHP_AP_ONLINE_DYN` state; removed (running `offline` on
/// every online CPU) on drop.
pub struct State<T: Callbacks> {
    id: ffi::c_int,
    _t: PhantomData<T>,
}

/// The hotplug core's "online" callback.
///
/// # Safety
///
/// Called by the hotplug core on `cpu`, which is coming online.
unsafe extern "C" fn online<T: Callbacks>(cpu: ffi::c_uint) -> ffi::c_int {
    match T::online(cpu) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The hotplug core's "offline" callback.
///
/// # Safety
///
/// Called by the hotplug core on `cpu`, which is going offline.
unsafe extern "C" fn offline<T: Callbacks>(cpu: ffi::c_uint) -> ffi::c_int {
    T::offline(cpu);
    0
}

impl<T: Callbacks> State<T> {
    /// Sets up the state and runs `T::online` on every online CPU; if one
    /// fails, the CPUs already brought up are rolled back and the error
    /// returned.
    pub fn setup(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is 'static and the callbacks are valid for the
        // state's lifetime, which ends in `drop`.
        let id = unsafe {
            rb::__cpuhp_setup_state(
                bindings::cpuhp_state_CPUHP_AP_ONLINE_DYN,
                name.as_char_ptr(),
                true,
                Some(online::<T>),
                Some(offline::<T>),
                false,
            )
        };
        to_result(id.min(0))?;
        Ok(Self {
            id,
            _t: PhantomData,
        })
    }
}

impl<T: Callbacks> Drop for State<T> {
    fn drop(&mut self) {
        // SAFETY: `id` is a state set up by `setup` and not yet removed.
        unsafe { rb::__cpuhp_remove_state(self.id as bindings::cpuhp_state, true) };
    }
}
