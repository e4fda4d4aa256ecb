"""Adversarial attacks, one module each, batched over samples; import them by module (attacks.jsma, ...)."""
