//! Pure component: see DESIGN.md section 3. No `kernel` crate, `core` only.
