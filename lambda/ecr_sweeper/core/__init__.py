"""Pure decisions over plain data: images and settings in, a plan out. No AWS SDK."""
