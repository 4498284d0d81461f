"""The clinic-day demo: a realistic day driven through the running services'
public interfaces, with catchers standing in for the mail server and the
SMS provider."""
