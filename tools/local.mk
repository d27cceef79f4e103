# tools/local.mk - programs for users and operators.
