//! Plain Rust mirrors of the KVM uapi structures the irqchip ioctls use
//! (`arch/x86/include/uapi/asm/kvm.h`, `include/uapi/linux/kvm.h` of
//! Linux 7.3), with identical field order, types and `repr(C)` layout so
//! the kernel side can copy them to and from user memory as they are.

use super::lapic_page::LAPIC_STATE_SIZE;

/// `KVM_IOAPIC_NUM_PINS`.
pub const KVM_IOAPIC_NUM_PINS: usize = 24;
/// `KVM_IRQCHIP_PIC_MASTER`.
pub const KVM_IRQCHIP_PIC_MASTER: u32 = 0;
/// `KVM_IRQCHIP_PIC_SLAVE`.
pub const KVM_IRQCHIP_PIC_SLAVE: u32 = 1;
/// `KVM_IRQCHIP_IOAPIC`.
pub const KVM_IRQCHIP_IOAPIC: u32 = 2;
/// `KVM_NR_IRQCHIPS`.
pub const KVM_NR_IRQCHIPS: usize = 3;
/// `KVM_PIT_FLAGS_HPET_LEGACY`.
pub const KVM_PIT_FLAGS_HPET_LEGACY: u32 = 0x1;
/// `KVM_PIT_FLAGS_SPEAKER_DATA_ON`.
pub const KVM_PIT_FLAGS_SPEAKER_DATA_ON: u32 = 0x2;
/// `KVM_IRQ_ROUTING_IRQCHIP`.
pub const KVM_IRQ_ROUTING_IRQCHIP: u32 = 1;
/// `KVM_IRQ_ROUTING_MSI`.
pub const KVM_IRQ_ROUTING_MSI: u32 = 2;
/// `KVM_MSI_VALID_DEVID`.
pub const KVM_MSI_VALID_DEVID: u32 = 1;
/// `KVM_MAX_IRQ_ROUTES`.
pub const KVM_MAX_IRQ_ROUTES: u32 = 4096;

/// `struct kvm_pic_state` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmPicState {
    /// Edge detection.
    pub last_irr: u8,
    /// Interrupt request register.
    pub irr: u8,
    /// Interrupt mask register.
    pub imr: u8,
    /// In-service register.
    pub isr: u8,
    /// Highest-priority IRQ rotation.
    pub priority_add: u8,
    /// Vector base from ICW2.
    pub irq_base: u8,
    /// OCW3 read-register select (0 = IRR, 1 = ISR).
    pub read_reg_select: u8,
    /// OCW3 poll command pending.
    pub poll: u8,
    /// Special mask mode.
    pub special_mask: u8,
    /// Initialization step (0 = operational, 1..3 = expecting ICW2..4).
    pub init_state: u8,
    /// ICW4 automatic EOI.
    pub auto_eoi: u8,
    /// Rotate on automatic EOI.
    pub rotate_on_auto_eoi: u8,
    /// ICW4 special fully nested mode.
    pub special_fully_nested_mode: u8,
    /// ICW1 announced an ICW4.
    pub init4: u8,
    /// PIIX edge/level control register.
    pub elcr: u8,
    /// Writable ELCR bits.
    pub elcr_mask: u8,
}

/// `struct kvm_ioapic_state` (216 bytes); `redirtbl` holds the raw 64-bit
/// redirection entries (see [`super::ioapic::RedirEntry`] for the fields).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmIoapicState {
    /// MMIO base address.
    pub base_address: u64,
    /// IOREGSEL.
    pub ioregsel: u32,
    /// IOAPIC ID (bits 3:0 used).
    pub id: u32,
    /// Pending (asserted, undelivered) pins.
    pub irr: u32,
    /// Padding.
    pub pad: u32,
    /// Redirection table.
    pub redirtbl: [u64; KVM_IOAPIC_NUM_PINS],
}

/// `struct kvm_pit_channel_state` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmPitChannelState {
    /// Initial count (1..=65536).
    pub count: u32,
    /// Latched count value.
    pub latched_count: u16,
    /// Count latch state (an RW_STATE value, 0 = none).
    pub count_latched: u8,
    /// Status byte latched.
    pub status_latched: u8,
    /// Latched status byte.
    pub status: u8,
    /// Read sequencing state.
    pub read_state: u8,
    /// Write sequencing state.
    pub write_state: u8,
    /// Low byte written in word mode.
    pub write_latch: u8,
    /// Access mode (1 = LSB, 2 = MSB, 3 = word).
    pub rw_mode: u8,
    /// Counter mode 0..5 (0xff = not programmed).
    pub mode: u8,
    /// BCD counting.
    pub bcd: u8,
    /// Gate input.
    pub gate: u8,
    /// Host monotonic time (ns) the count was loaded / gate triggered.
    pub count_load_time: i64,
}

/// `struct kvm_pit_state` (KVM_GET/SET_PIT).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmPitState {
    /// The three channels.
    pub channels: [KvmPitChannelState; 3],
}

/// `struct kvm_pit_state2` (112 bytes, KVM_GET/SET_PIT2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmPitState2 {
    /// The three channels.
    pub channels: [KvmPitChannelState; 3],
    /// `KVM_PIT_FLAGS_*`.
    pub flags: u32,
    /// Reserved, zero.
    pub reserved: [u32; 9],
}

/// `struct kvm_lapic_state`: the first 1 KiB of the APIC register page.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KvmLapicState {
    /// Register image, little endian, upstream layout.
    pub regs: [u8; LAPIC_STATE_SIZE],
}

impl Default for KvmLapicState {
    fn default() -> Self {
        Self {
            regs: [0; LAPIC_STATE_SIZE],
        }
    }
}

impl core::fmt::Debug for KvmLapicState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KvmLapicState { .. }")
    }
}

impl KvmLapicState {
    /// Reads the 32-bit register at byte `offset` of the image.
    pub fn reg(&self, offset: u32) -> u32 {
        let mut le = [0u8; 4];
        let src = self.regs.iter().skip(offset as usize);
        for (dst, b) in le.iter_mut().zip(src) {
            *dst = *b;
        }
        u32::from_le_bytes(le)
    }

    /// Writes the 32-bit register at byte `offset` of the image.
    pub fn set_reg(&mut self, offset: u32, value: u32) {
        let dst = self.regs.iter_mut().skip(offset as usize);
        for (d, b) in dst.zip(value.to_le_bytes()) {
            *d = b;
        }
    }
}

/// `struct kvm_irq_routing_entry` (48 bytes). The union `u` is kept as raw
/// words: `irqchip = { irqchip, pin }`, `msi = { address_lo, address_hi,
/// data, devid }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmIrqRoutingEntry {
    /// Global system interrupt number.
    pub gsi: u32,
    /// `KVM_IRQ_ROUTING_*`.
    pub type_: u32,
    /// `KVM_MSI_VALID_DEVID` for MSI routes, else 0.
    pub flags: u32,
    /// Padding.
    pub pad: u32,
    /// Union payload.
    pub u: [u32; 8],
}

/// `struct kvm_msi` (32 bytes, KVM_SIGNAL_MSI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmMsi {
    /// Address bits 31:0.
    pub address_lo: u32,
    /// Address bits 63:32.
    pub address_hi: u32,
    /// Data.
    pub data: u32,
    /// `KVM_MSI_VALID_DEVID`.
    pub flags: u32,
    /// Device ID (ignored on x86).
    pub devid: u32,
    /// Padding.
    pub pad: [u8; 12],
}

const _: () = assert!(core::mem::size_of::<KvmPicState>() == 16);
const _: () = assert!(core::mem::size_of::<KvmIoapicState>() == 216);
const _: () = assert!(core::mem::size_of::<KvmPitChannelState>() == 24);
const _: () = assert!(core::mem::offset_of!(KvmPitChannelState, count_load_time) == 16);
const _: () = assert!(core::mem::size_of::<KvmPitState>() == 72);
const _: () = assert!(core::mem::size_of::<KvmPitState2>() == 112);
const _: () = assert!(core::mem::size_of::<KvmLapicState>() == 1024);
const _: () = assert!(core::mem::size_of::<KvmIrqRoutingEntry>() == 48);
const _: () = assert!(core::mem::size_of::<KvmMsi>() == 32);
