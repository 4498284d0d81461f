"""The patient pages: the only web pages patients reach, on their own port,
apart from the staff API (``clinic run patient-pages``)."""
