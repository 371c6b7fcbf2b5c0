// SPDX-License-Identifier: GPL-2.0
//! x86 architectural definitions, one definition per constant: MSR
//! indices, register bits, CPUID feature bits, paging and address types,
//! exception vectors. Every other part of rkvm (the pure components, the
//! generic and x86 core, the vendor backends) uses these instead of its
//! own copy.
//!
//! Pure component (DESIGN.md section 3): `core` only, no `unsafe`, no
//! panics. Compiled into kvm.ko as `crate::defs` and into every host test
//! crate that needs it (tests/host/defs tests it on its own).
//!
//! # Naming
//!
//! A constant upstream Linux defines has upstream's name and value
//! (arch/x86/include/asm/msr-index.h, uapi/asm/processor-flags.h,
//! uapi/asm/kvm_para.h, uapi/asm/kvm.h, asm/fpu/types.h, arch/x86/kvm/*.h),
//! spelled in upper case where upstream mixes cases (`MSR_MTRRcap` is
//! [`msr::MSR_MTRRCAP`]). Names are unique across all of `defs`, so a
//! `use crate::defs::msr::*` next to a `use crate::defs::regs::*` never
//! clashes; tests/host/defs checks that, and compares the values with the
//! Linux headers when the kernel source is available.
//!
//! # Modules
//!
//! * [`msr`]: MSR indices and the bits of MSR values (APIC base,
//!   `IA32_ARCH_CAPABILITIES`, MCE, MTRR, ...), the x2APIC MSR range and
//!   the machine-check bank layout.
//! * [`regs`]: general-purpose register numbers; RFLAGS, CR0, CR4, EFER,
//!   XCR0 (`XFEATURE_MASK_*`), DR6 and DR7 bits and reset values.
//! * [`cpuid`]: CPUID feature words ([`cpuid::Leaf`]), feature bits
//!   ([`cpuid::Feature`], `X86_FEATURE_*`) and the host kernel's feature
//!   numbering ([`cpuid::LinuxFeature`]).
//! * [`paging`]: page size, page-table entry bits, page-fault error codes,
//!   paging levels, and the address types [`paging::Gpa`],
//!   [`paging::Gfn`] and [`paging::Gva`].
//! * [`vector`]: exception vectors and which of them push an error code.
//! * [`time`]: time unit conversions shared by the timer and clock models.

pub mod cpuid;
pub mod msr;
pub mod paging;
pub mod regs;
pub mod svm;
pub mod time;
pub mod vector;
