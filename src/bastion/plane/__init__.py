"""The command plane: commands declared once, served with token checks, RBAC, step-up,
resumable listings and audit."""
