//! Two instances on one Redis (filled in below).
