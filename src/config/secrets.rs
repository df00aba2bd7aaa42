//! Secret resolution: `${ENV}` interpolation and `*_file` reads.
