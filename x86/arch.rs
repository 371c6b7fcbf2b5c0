// SPDX-License-Identifier: GPL-2.0
//! The interface between kvm.ko and a vendor backend (kvm-amd, kvm-intel).
//!
//! A vendor module implements [`ArchOps`] and calls [`register`] from its
//! init; the returned [`Registration`] unregisters when the vendor module
//! exits. While registered, virtualization is enabled on every online CPU
//! (and on CPUs that come online later), like upstream's default
//! `enable_virt_at_load`. Every VM holds a [`VendorRef`], which pins the
//! vendor module, so `rmmod kvm-amd` with live VMs fails cleanly.

use crate::ext::cpuhp;
use kernel::{bindings, prelude::*, sync::Arc, ThisModule};

/// What a vendor backend implements.
pub trait ArchOps: Send + Sync {
    /// Enables hardware virtualization on the current CPU, `cpu`.
    ///
    /// Runs in `cpu`'s hotplug thread: may sleep, cannot migrate.
    fn enable_cpu(&self, cpu: u32) -> Result;

    /// Undoes [`ArchOps::enable_cpu`] on the current CPU, `cpu`.
    fn disable_cpu(&self, cpu: u32);
}

struct Vendor {
    name: &'static CStr,
    ops: Arc<dyn ArchOps>,
    module: *mut bindings::module,
    /// Virtualization is enabled on all CPUs: VMs may be created.
    ready: bool,
}

// SAFETY: `module` is only passed to try_module_get()/module_put(), which
// may be called from any thread.
unsafe impl Send for Vendor {}

/// Global state of kvm.ko, protected by [`KVM_LOCK`].
pub(crate) struct Core {
    vendor: Option<Vendor>,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in kvm.ko's module init, before any other use.
    pub(crate) unsafe(uninit) static KVM_LOCK: Mutex<Core> = Core { vendor: None };
}

/// A registered vendor backend. Dropping it disables virtualization on
/// every CPU and unregisters the backend.
pub struct Registration {
    cpus: Option<cpuhp::State<Hotplug>>,
}

/// Registers a vendor backend. Fails with `EBUSY` if one is registered.
pub fn register(
    name: &'static CStr,
    ops: Arc<dyn ArchOps>,
    module: &'static ThisModule,
) -> Result<Registration> {
    {
        let mut core = KVM_LOCK.lock();
        if let Some(v) = &core.vendor {
            pr_err!("cannot register {}: {} is already registered\n", name, v.name);
            return Err(EBUSY);
        }
        core.vendor = Some(Vendor { name, ops, module: module.as_ptr(), ready: false });
    }
    // Not under KVM_LOCK: the hotplug callbacks take it on each CPU.
    match cpuhp::State::<Hotplug>::setup(c"kvm/x86:online") {
        Ok(cpus) => {
            if let Some(v) = KVM_LOCK.lock().vendor.as_mut() {
                v.ready = true;
            }
            Ok(Registration { cpus: Some(cpus) })
        }
        Err(e) => {
            pr_err!("{}: enabling virtualization failed: {:?}\n", name, e);
            KVM_LOCK.lock().vendor = None;
            Err(e)
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(v) = KVM_LOCK.lock().vendor.as_mut() {
            v.ready = false;
        }
        // Runs `disable_cpu` on every online CPU.
        drop(self.cpus.take());
        KVM_LOCK.lock().vendor = None;
    }
}

fn registered_ops() -> Result<Arc<dyn ArchOps>> {
    KVM_LOCK.lock().vendor.as_ref().map(|v| v.ops.clone()).ok_or(ENODEV)
}

struct Hotplug;

impl cpuhp::Callbacks for Hotplug {
    fn online(cpu: u32) -> Result {
        registered_ops()?.enable_cpu(cpu)
    }

    fn offline(cpu: u32) {
        if let Ok(ops) = registered_ops() {
            ops.disable_cpu(cpu);
        }
    }
}

/// A VM's hold on the registered vendor backend; pins the vendor module.
pub(crate) struct VendorRef {
    #[allow(dead_code)]
    pub(crate) ops: Arc<dyn ArchOps>,
    module: *mut bindings::module,
}

// SAFETY: see `Vendor`.
unsafe impl Send for VendorRef {}
// SAFETY: `&VendorRef` gives access only to `ops`, which is `Sync`.
unsafe impl Sync for VendorRef {}

impl VendorRef {
    /// The registered backend, or `ENODEV` when no vendor module is loaded.
    pub(crate) fn get() -> Result<Self> {
        let core = KVM_LOCK.lock();
        let v = core.vendor.as_ref().filter(|v| v.ready).ok_or(ENODEV)?;
        // SAFETY: `v.module` is the vendor module, alive while registered.
        if !unsafe { bindings::try_module_get(v.module) } {
            return Err(ENODEV);
        }
        Ok(Self { ops: v.ops.clone(), module: v.module })
    }
}

impl Drop for VendorRef {
    fn drop(&mut self) {
        // SAFETY: balances the try_module_get() in `get`.
        unsafe { bindings::module_put(self.module) };
    }
}
