"""Promotions: which user gets which offer, by the purchases the offer adds (issue 22).

`offers` holds the typed inputs and the decision output, `uplift` the online uplift
learners and the Qini metric, `decider` the per-user/offer decision.
"""
