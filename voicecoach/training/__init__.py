"""Her training over days: the journal, the progression rules, what is said between sets (progress, questions,
reminders) and the local clock they use."""
