// SPDX-License-Identifier: GPL-2.0
//! Module parameters that show in `/sys/module/<module>/parameters/` with
//! upstream's names, C types and permissions.
//!
//! The 7.3 `kernel` crate's `module!` parameters are load-time only and
//! invisible in sysfs (`perm` 0), but KVM users and the upstream selftests
//! read (and some write) KVM's parameters there. [`module_param!`] emits
//! what C's `module_param()` emits: a `struct kernel_param` in `__param`
//! using the kernel's own `param_ops_*` for the C type, and the `parmtype`
//! and `parm` modinfo strings `modinfo` shows. Values are read with
//! relaxed atomic loads (the C ops store them plainly, as for any C
//! parameter read with READ_ONCE()).

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU16, AtomicU32, Ordering};

/// Storage of a parameter of C type `int`.
#[repr(transparent)]
pub struct ParamInt(AtomicI32);
/// Storage of a parameter of C type `uint`.
#[repr(transparent)]
pub struct ParamUint(AtomicU32);
/// Storage of a parameter of C type `ushort`.
#[repr(transparent)]
pub struct ParamUshort(AtomicU16);
/// Storage of a parameter of C type `bool`.
#[repr(transparent)]
pub struct ParamBool(AtomicBool);

macro_rules! storage {
    ($t:ident, $v:ty, $atomic:ident) => {
        impl $t {
            /// A parameter with `default`.
            pub const fn new(default: $v) -> Self {
                Self($atomic::new(default))
            }

            /// The current value.
            pub fn get(&self) -> $v {
                self.0.load(Ordering::Relaxed)
            }

            /// Changes the value (module init deciding what is available).
            pub fn set(&self, v: $v) {
                self.0.store(v, Ordering::Relaxed)
            }

            /// The `arg` of its `kernel_param`.
            #[doc(hidden)]
            pub const fn as_arg(&self) -> *mut kernel::ffi::c_void {
                self.0.as_ptr().cast()
            }
        }
    };
}

storage!(ParamInt, i32, AtomicI32);
storage!(ParamUint, u32, AtomicU32);
storage!(ParamUshort, u16, AtomicU16);
storage!(ParamBool, bool, AtomicBool);

/// A `&'static str` as the byte array of a modinfo entry.
#[doc(hidden)]
pub const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Declares module parameter `$cname` (a C string literal) of C type
/// `$ctype` ("int", "uint", "ushort", "bool"), stored in Rust static
/// `$name` of type `$storage` (`ParamInt`, ...), with sysfs permissions
/// `$perm` and `modinfo` description `$desc`:
///
/// ```ignore
/// module_param!(pub(crate) FORCE_EMULATION_PREFIX: ParamInt = 0, "force_emulation_prefix", "int", param_ops_int, 0o644, "...");
/// ```
#[macro_export]
macro_rules! module_param {
    ($vis:vis $name:ident: $storage:ident = $default:expr, $cname:literal, $ctype:literal, $ops:ident, $perm:expr, $desc:literal) => {
        #[doc = $desc]
        $vis static $name: $crate::ext::module_param::$storage = $crate::ext::module_param::$storage::new($default);

        const _: () = {
            const PARMTYPE: &str = concat!("parmtype=", $cname, ":", $ctype, "\0");
            const PARM: &str = concat!("parm=", $cname, ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_TYPE: [u8; PARMTYPE.len()] = $crate::ext::module_param::modinfo(PARMTYPE);
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_DESC: [u8; PARM.len()] = $crate::ext::module_param::modinfo(PARM);
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: ::kernel::module_param::KernelParam =
                ::kernel::module_param::KernelParam::new(::kernel::bindings::kernel_param {
                    name: concat!($cname, "\0").as_ptr().cast(),
                    // The running module itself, valid until it is unloaded
                    // (with its parameters); a raw address, no access.
                    mod_: &raw mut ::kernel::bindings::__this_module,
                    ops: &raw const ::kernel::bindings::$ops,
                    perm: $perm,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: ::kernel::bindings::kernel_param__bindgen_ty_1 { arg: $name.as_arg() },
                });
        };
    };
}
