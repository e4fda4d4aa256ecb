"""Adversarial attacks, one module each, batched over samples, all behind common.Attack; registry builds one by
its config name."""
