//! CRC32 checksums of Kraken and Bitfinex books.
