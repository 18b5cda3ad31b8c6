// Package change plans and applies the MachineConfig changes of enable,
// disable, wrap and unwrap: which of our configs to create, update or
// delete, what each reached pool's merged config becomes (and so whether
// its nodes reboot), what the wait must then see, and the server-side
// apply and guarded delete that carry the plan out.
//
// It returns data and typed errors only; pkg/plugin prints the plan, asks,
// and phrases the errors with the flags the user can change.
package change
