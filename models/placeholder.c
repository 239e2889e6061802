/* Removed once the first model lands. */
typedef int cvm__models_placeholder;
