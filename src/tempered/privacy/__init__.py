"""Membership inference (issue 8): per-sample attack scores, per-class thresholds learned on shadow models, the
likelihood-ratio attack, and the metrics of an attack. Every score is 'higher = more likely a member'."""
