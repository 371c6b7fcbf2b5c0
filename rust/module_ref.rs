// SPDX-License-Identifier: GPL-2.0
//! A counted reference on a loaded module (`try_module_get`), which keeps
//! it from being unloaded until dropped.

use kernel::{bindings, ThisModule};

/// Holds `module` loaded.
pub struct ModuleRef {
    module: &'static ThisModule,
}

impl ModuleRef {
    /// Takes a reference, or `None` if the module is going away.
    pub fn try_get(module: &'static ThisModule) -> Option<Self> {
        // SAFETY: `module` is a live module (a `'static` ThisModule of a
        // loaded module); try_module_get accepts any module pointer.
        unsafe { bindings::try_module_get(module.as_ptr()) }.then_some(Self { module })
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: balances the successful try_module_get() in `try_get`.
        unsafe { bindings::module_put(self.module.as_ptr()) };
    }
}
