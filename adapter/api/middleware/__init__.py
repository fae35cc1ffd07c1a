"""What wraps every request: the body size limit, the audit trail, problem-detail errors."""
