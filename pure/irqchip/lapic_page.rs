//! The LAPIC register page: the first 1 KiB of the xAPIC MMIO page, laid
//! out exactly like upstream's `apic->regs` and `struct kvm_lapic_state`.

use super::lapic_regs::{APIC_VECTOR_BANK_STRIDE, APIC_VECTOR_BANK_WORDS};

/// Size of the register image (`KVM_APIC_REG_SIZE`).
pub const LAPIC_STATE_SIZE: usize = 1024;
const WORDS: usize = LAPIC_STATE_SIZE / 4;

/// Raw register storage, one `u32` per 4 bytes of the page.
#[derive(Clone, PartialEq, Eq)]
pub struct RegPage {
    words: [u32; WORDS],
}

impl Default for RegPage {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for RegPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RegPage { .. }")
    }
}

impl RegPage {
    /// An all-zero page.
    pub const fn new() -> Self {
        Self { words: [0; WORDS] }
    }

    fn index(offset: u32) -> usize {
        (offset >> 2) as usize
    }

    /// Reads the 32-bit register at byte `offset` (0 outside the page).
    pub fn get(&self, offset: u32) -> u32 {
        self.words.get(Self::index(offset)).copied().unwrap_or(0)
    }

    /// Writes the 32-bit register at byte `offset` (ignored outside).
    pub fn set(&mut self, offset: u32, value: u32) {
        if let Some(word) = self.words.get_mut(Self::index(offset)) {
            *word = value;
        }
    }

    fn vector_slot(bank: u32, vector: u8) -> (u32, u32) {
        let word = u32::from(vector >> 5);
        (
            bank.wrapping_add(word * APIC_VECTOR_BANK_STRIDE),
            1u32 << (vector & 31),
        )
    }

    /// Tests `vector` in the ISR/TMR/IRR bank starting at `bank`.
    pub fn test_vector(&self, bank: u32, vector: u8) -> bool {
        let (offset, bit) = Self::vector_slot(bank, vector);
        self.get(offset) & bit != 0
    }

    /// Sets `vector` in a bank.
    pub fn set_vector(&mut self, bank: u32, vector: u8) {
        let (offset, bit) = Self::vector_slot(bank, vector);
        self.set(offset, self.get(offset) | bit);
    }

    /// Clears `vector` in a bank.
    pub fn clear_vector(&mut self, bank: u32, vector: u8) {
        let (offset, bit) = Self::vector_slot(bank, vector);
        self.set(offset, self.get(offset) & !bit);
    }

    /// Highest vector set in a bank.
    pub fn highest_vector(&self, bank: u32) -> Option<u8> {
        let mut word = APIC_VECTOR_BANK_WORDS;
        while word > 0 {
            word -= 1;
            let bits = self.get(bank.wrapping_add(word * APIC_VECTOR_BANK_STRIDE));
            if let Some(bit) = bits.checked_ilog2() {
                // word < 8 and bit < 32: the vector fits in 8 bits.
                return u8::try_from(word.wrapping_mul(32) | bit).ok();
            }
        }
        None
    }

    /// Clears a whole bank.
    pub fn clear_bank(&mut self, bank: u32) {
        for w in 0..APIC_VECTOR_BANK_WORDS {
            self.set(bank.wrapping_add(w * APIC_VECTOR_BANK_STRIDE), 0);
        }
    }

    /// Little-endian byte image (the `kvm_lapic_state.regs` layout).
    pub fn to_bytes(&self) -> [u8; LAPIC_STATE_SIZE] {
        let mut out = [0u8; LAPIC_STATE_SIZE];
        let mut bytes = out.iter_mut();
        for word in self.words.iter() {
            // The 4-byte side drives the zip so no extra byte is consumed.
            for (src, dst) in word.to_le_bytes().into_iter().zip(bytes.by_ref()) {
                *dst = src;
            }
        }
        out
    }

    /// Page from a little-endian byte image.
    pub fn from_bytes(bytes: &[u8; LAPIC_STATE_SIZE]) -> Self {
        let mut page = Self::new();
        let mut src = bytes.iter();
        for word in page.words.iter_mut() {
            let mut le = [0u8; 4];
            for (dst, b) in le.iter_mut().zip(src.by_ref()) {
                *dst = *b;
            }
            *word = u32::from_le_bytes(le);
        }
        page
    }
}
