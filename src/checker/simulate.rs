//! Seeded random walks, for models too large to explore exhaustively.
